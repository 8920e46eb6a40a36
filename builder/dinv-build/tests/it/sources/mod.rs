//! Package sources: apk repositories and Debian archives.

mod apk_hostile;
mod apk_source;
mod apt_judge;
mod debian_source;
mod debian_suites;
