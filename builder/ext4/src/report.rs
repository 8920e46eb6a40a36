//! What the writer reports about an image.

/// What was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ext4Report {
    /// Image file size in bytes.
    pub size: u64,
    /// Filesystem block size in bytes.
    pub block_size: u32,
    /// Filesystem size in blocks.
    pub blocks: u64,
    /// Blocks in use (metadata, journal and content).
    pub blocks_used: u64,
    /// Blocks free.
    pub free_blocks: u64,
    /// Inodes in the filesystem.
    pub inodes: u64,
    /// Inodes in use (including the ten reserved ones).
    pub inodes_used: u64,
    /// Block groups.
    pub groups: u64,
    /// Journal size in blocks (0 without a journal).
    pub journal_blocks: u64,
}
