//! Which module provides a config option when a kernel builds it as `=m`.
//!
//! Kernels ship no option→module map (it lives in the Makefiles), so we keep
//! one for the options our fragments require. A missing entry surfaces as
//! [`crate::kconfig::ProblemKind::UnknownModule`], never as a silent skip.

/// (option, module name as `modprobe` spells it).
const TABLE: &[(&str, &str)] = &[
    ("CONFIG_9P_FS", "9p"),
    ("CONFIG_ACPI_BUTTON", "button"),
    ("CONFIG_BRIDGE", "bridge"),
    ("CONFIG_BRIDGE_NETFILTER", "br_netfilter"),
    ("CONFIG_CRC16", "crc16"),
    ("CONFIG_CRYPTO_CRC32C", "crc32c_generic"),
    ("CONFIG_EXT4_FS", "ext4"),
    ("CONFIG_FS_MBCACHE", "mbcache"),
    ("CONFIG_FUSE_FS", "fuse"),
    ("CONFIG_FW_CFG_SYSFS", "qemu_fw_cfg"),
    ("CONFIG_HW_RANDOM_VIRTIO", "virtio_rng"),
    ("CONFIG_INPUT_EVDEV", "evdev"),
    ("CONFIG_IP_NF_FILTER", "iptable_filter"),
    ("CONFIG_IP_NF_IPTABLES", "ip_tables"),
    ("CONFIG_IP_NF_NAT", "iptable_nat"),
    // Since 5.x the IPv4 MASQUERADE target lives in xt_MASQUERADE.
    ("CONFIG_IP_NF_TARGET_MASQUERADE", "xt_MASQUERADE"),
    ("CONFIG_JBD2", "jbd2"),
    ("CONFIG_LIBCRC32C", "libcrc32c"),
    ("CONFIG_NETFILTER_XT_MARK", "xt_mark"),
    ("CONFIG_NETFILTER_XT_MATCH_ADDRTYPE", "xt_addrtype"),
    ("CONFIG_NETFILTER_XT_MATCH_CONNTRACK", "xt_conntrack"),
    ("CONFIG_NETFILTER_XT_NAT", "xt_nat"),
    ("CONFIG_NETFILTER_XT_TARGET_MASQUERADE", "xt_MASQUERADE"),
    ("CONFIG_NET_9P", "9pnet"),
    ("CONFIG_NET_9P_VIRTIO", "9pnet_virtio"),
    ("CONFIG_NFT_COMPAT", "nft_compat"),
    ("CONFIG_NFT_CT", "nft_ct"),
    ("CONFIG_NFT_MASQ", "nft_masq"),
    ("CONFIG_NFT_NAT", "nft_nat"),
    ("CONFIG_NF_CONNTRACK", "nf_conntrack"),
    ("CONFIG_NF_NAT", "nf_nat"),
    ("CONFIG_NF_TABLES", "nf_tables"),
    ("CONFIG_OVERLAY_FS", "overlay"),
    ("CONFIG_PACKET", "af_packet"),
    ("CONFIG_UNIX", "unix"),
    ("CONFIG_VETH", "veth"),
    ("CONFIG_VIRTIO", "virtio"),
    ("CONFIG_VIRTIO_BALLOON", "virtio_balloon"),
    ("CONFIG_VIRTIO_BLK", "virtio_blk"),
    ("CONFIG_VIRTIO_CONSOLE", "virtio_console"),
    ("CONFIG_VIRTIO_MMIO", "virtio_mmio"),
    ("CONFIG_VIRTIO_NET", "virtio_net"),
];

/// The module that provides `option` (full `CONFIG_` name), if we know it.
pub fn module_for_option(option: &str) -> Option<String> {
    TABLE.iter().find(|(o, _)| *o == option).map(|(_, m)| m.to_string())
}

/// Every option the table knows (for tests that cross-check a kernel).
pub fn known_options() -> impl Iterator<Item = (&'static str, &'static str)> {
    TABLE.iter().copied()
}

#[cfg(test)]
mod tests {
    #[test]
    fn table_is_sorted_and_unique() {
        let names: Vec<_> = super::TABLE.iter().map(|(o, _)| *o).collect();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(names, sorted);
        assert_eq!(super::module_for_option("CONFIG_EXT4_FS").as_deref(), Some("ext4"));
        assert_eq!(super::module_for_option("CONFIG_NOPE"), None);
    }
}
