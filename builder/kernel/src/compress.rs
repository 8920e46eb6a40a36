//! Compressed kernel modules (`.ko.gz`, `.ko.xz`, `.ko.zst`).

use std::io::Read;

/// How a module file is compressed, from its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Xz,
    Zstd,
}

impl Compression {
    /// Splits a module file name into its stem (without `.ko*`) and its
    /// compression; `None` for files that are not modules.
    pub fn split_module_name(file_name: &str) -> Option<(&str, Compression)> {
        for (suffix, c) in [(".ko", Compression::None), (".ko.gz", Compression::Gzip), (".ko.xz", Compression::Xz), (".ko.zst", Compression::Zstd)] {
            if let Some(stem) = file_name.strip_suffix(suffix) {
                if !stem.is_empty() {
                    return Some((stem, c));
                }
            }
        }
        None
    }

    /// Decompresses a whole module; `Compression::None` copies.
    pub fn decompress(self, mut input: impl Read) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        match self {
            Compression::None => input.read_to_end(&mut out)?,
            Compression::Gzip => flate2::read::MultiGzDecoder::new(input).read_to_end(&mut out)?,
            Compression::Xz => liblzma::read::XzDecoder::new_multi_decoder(input).read_to_end(&mut out)?,
            Compression::Zstd => zstd::stream::read::Decoder::new(input)?.read_to_end(&mut out)?,
        };
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn names_and_round_trips() {
        assert_eq!(Compression::split_module_name("ext4.ko.xz"), Some(("ext4", Compression::Xz)));
        assert_eq!(Compression::split_module_name("crc-t10dif.ko"), Some(("crc-t10dif", Compression::None)));
        assert_eq!(Compression::split_module_name("modules.dep"), None);
        assert_eq!(Compression::split_module_name(".ko"), None);
        let data = b"\x7fELF module bytes".repeat(100);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 6);
        xz.write_all(&data).unwrap();
        let xz = xz.finish().unwrap();
        let zst = zstd::encode_all(&data[..], 3).unwrap();
        for (c, bytes) in [(Compression::Gzip, gz), (Compression::Xz, xz), (Compression::Zstd, zst), (Compression::None, data.clone())] {
            assert_eq!(c.decompress(&bytes[..]).unwrap(), data, "{c:?}");
        }
        assert!(Compression::Xz.decompress(&b"not xz"[..]).is_err());
    }
}
