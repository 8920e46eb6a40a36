//! The compressions Debian archives use for indices and `.deb` members.

use std::io::{self, BufReader, Read};

use crate::DebError;

/// A compression format, named by file extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Xz,
    Zstd,
}

impl Compression {
    /// From a file name's extension (`Packages.xz`, `data.tar.zst`); `None`
    /// for no or an unknown extension.
    pub fn from_name(name: &str) -> Compression {
        match name.rsplit_once('.').map(|(_, e)| e) {
            Some("gz") => Compression::Gzip,
            Some("xz") => Compression::Xz,
            Some("zst") => Compression::Zstd,
            _ => Compression::None,
        }
    }

    /// The extension including the dot (`""` for none).
    pub fn extension(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip => ".gz",
            Compression::Xz => ".xz",
            Compression::Zstd => ".zst",
        }
    }
}

/// A decompressing reader over `R` (no boxing, so it stays `Send` when `R` is).
pub enum Decoder<R: Read> {
    Plain(R),
    Gzip(flate2::read::MultiGzDecoder<R>),
    Xz(liblzma::read::XzDecoder<R>),
    Zstd(zstd::stream::read::Decoder<'static, BufReader<R>>),
}

impl<R: Read> Decoder<R> {
    /// Wraps `inner` in the decoder for `c`.
    pub fn new(inner: R, c: Compression) -> io::Result<Self> {
        Ok(match c {
            Compression::None => Decoder::Plain(inner),
            Compression::Gzip => Decoder::Gzip(flate2::read::MultiGzDecoder::new(inner)),
            // Multi-stream, as `xz -dc` does (pixz and parallel xz write several).
            Compression::Xz => Decoder::Xz(liblzma::read::XzDecoder::new_multi_decoder(inner)),
            Compression::Zstd => Decoder::Zstd(zstd::stream::read::Decoder::new(inner)?),
        })
    }
}

impl<R: Read> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::Plain(r) => r.read(buf),
            Decoder::Gzip(r) => r.read(buf),
            Decoder::Xz(r) => r.read(buf),
            Decoder::Zstd(r) => r.read(buf),
        }
    }
}

/// Decompresses a whole buffer; `what` names it in errors.
pub fn decompress(bytes: &[u8], c: Compression, what: &str) -> Result<Vec<u8>, DebError> {
    if c == Compression::None {
        return Ok(bytes.to_vec());
    }
    let mut out = Vec::with_capacity(bytes.len() * 4);
    Decoder::new(bytes, c)
        .and_then(|mut d| d.read_to_end(&mut out))
        .map_err(|e| DebError::io(format!("decompressing {what} ({c:?})"), e))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn round_trips_each_format() {
        let data = b"Package: a\nVersion: 1\n\n".repeat(100);
        let gz = {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(&data).unwrap();
            e.finish().unwrap()
        };
        let xz = {
            let mut e = liblzma::write::XzEncoder::new(Vec::new(), 6);
            e.write_all(&data).unwrap();
            e.finish().unwrap()
        };
        let zst = zstd::encode_all(&data[..], 3).unwrap();
        for (bytes, name) in
            [(gz, "Packages.gz"), (xz, "Packages.xz"), (zst, "data.tar.zst"), (data.clone(), "Packages")]
        {
            let c = Compression::from_name(name);
            assert_eq!(decompress(&bytes, c, name).unwrap(), data, "{name}");
        }
        let e = decompress(b"not xz", Compression::Xz, "Packages.xz").unwrap_err().to_string();
        assert!(e.contains("Packages.xz"), "{e}");
    }
}
