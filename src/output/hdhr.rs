//! HDHomeRun-compatible files (proxy `hdhr = { dir, base_url, friendly_name, tuners }`): the
//! static part of SiliconDust's HTTP API that Plex, Jellyfin and Emby read from a network
//! tuner, written for any web server to serve: `discover.json` (the device, with `BaseURL` and
//! `LineupURL`), `lineup.json` (one entry per playlist channel: `GuideNumber`, `GuideName`,
//! `URL`), `lineup_status.json` (no scan running) and `device.xml` (the UPnP device
//! description). The one request a static server cannot answer from a file, Plex's
//! `POST lineup.post?scan=start`, needs a line of web-server configuration (README).
//!
//! Each file is written atomically ([`AtomicFile`]) and deterministically: the same channels
//! give the same bytes. `lineup.json` is streamed, one channel at a time, so it costs no memory
//! per channel. The `DeviceID` is derived from the proxy name, so it is stable from build to
//! build and different per proxy; it passes libhdhomerun's device-id check
//! ([`device_id_is_valid`]), which players use to tell real ids from typos.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{AtomicFile, Written};
use crate::config::Hdhr;
use crate::model::{Channel, Field};

/// What SiliconDust's own tuners announce; players key features off these, so a generic value
/// is read as an HDHomeRun CONNECT.
const MANUFACTURER: &str = "Silicondust";
const MODEL: &str = "HDTC-2US";
const FIRMWARE_NAME: &str = "hdhomeruntc_atsc";
const FIRMWARE_VERSION: &str = "20200101";

/// `discover.json`. Field order is the order written.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Discover<'a> {
    friendly_name: &'a str,
    manufacturer: &'a str,
    model_number: &'a str,
    firmware_name: &'a str,
    firmware_version: &'a str,
    #[serde(rename = "DeviceID")]
    device_id: &'a str,
    device_auth: &'a str,
    #[serde(rename = "BaseURL")]
    base_url: &'a str,
    #[serde(rename = "LineupURL")]
    lineup_url: &'a str,
    tuner_count: u32,
}

/// One entry of `lineup.json`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct LineupEntry<'a> {
    guide_number: &'a str,
    guide_name: &'a str,
    #[serde(rename = "URL")]
    url: &'a str,
}

/// `lineup_status.json`: no scan running, but one possible. Plex then posts
/// `lineup.post?scan=start` (the web server must answer it with 200, see the README) and reads
/// `lineup.json`; told no scan is possible, current Plex versions import no channels at all.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct LineupStatus<'a> {
    scan_in_progress: u8,
    scan_possible: u8,
    source: &'a str,
    source_list: [&'a str; 1],
}

/// The files of one proxy's tuner, `lineup.json` being written.
pub struct HdhrWriter {
    dir: PathBuf,
    base_url: String,
    friendly_name: String,
    tuners: u32,
    device_id: String,
    lineup: AtomicFile,
    /// Channels written so far (the next one's position is this plus one).
    pub channels: u64,
    carries_credentials: bool,
    file_mode: Option<u32>,
    entry: Vec<u8>,
}

impl HdhrWriter {
    /// Start writing the files of `proxy` into `dir`. `file_mode` as for the playlist: unset,
    /// `lineup.json` is `0600` when a stream URL carries a credential, else `0644`.
    pub fn create(
        dir: &Path,
        proxy: &str,
        hdhr: &Hdhr,
        file_mode: Option<u32>,
    ) -> Result<HdhrWriter> {
        let mut lineup = AtomicFile::create(&dir.join("lineup.json"))?;
        lineup
            .write_all(b"[")
            .with_context(|| format!("cannot write {}", lineup.dest().display()))?;
        Ok(HdhrWriter {
            dir: dir.to_path_buf(),
            base_url: hdhr.base_url.get_ref().trim_end_matches('/').to_string(),
            friendly_name: hdhr
                .friendly_name
                .clone()
                .unwrap_or_else(|| format!("lineup {proxy}")),
            tuners: *hdhr.tuners.get_ref(),
            device_id: device_id(proxy),
            lineup,
            channels: 0,
            carries_credentials: false,
            file_mode,
            entry: Vec::with_capacity(256),
        })
    }

    /// Add a channel (in playlist order). Its `GuideNumber` is its `tvg-chno` (what
    /// `numbering` sets), or its position in the playlist when it has none.
    pub fn write(&mut self, ch: &Channel) -> Result<()> {
        self.channels += 1;
        let position;
        let number = match ch.get(&Field::TvgChno).trim() {
            "" => {
                position = self.channels.to_string();
                position.as_str()
            }
            n => n,
        };
        self.entry.clear();
        self.entry.extend_from_slice(if self.channels == 1 {
            b"\n  "
        } else {
            b",\n  "
        });
        let entry = LineupEntry {
            guide_number: number,
            guide_name: &ch.name,
            url: &ch.url,
        };
        serde_json::to_writer(&mut self.entry, &entry).expect("serialising to memory");
        self.lineup
            .write_all(&self.entry)
            .with_context(|| format!("cannot write {}", self.lineup.dest().display()))?;
        if !self.carries_credentials && crate::secrets::contains_secret(&ch.url) {
            self.carries_credentials = true;
        }
        Ok(())
    }

    /// Finish `lineup.json` and write the other three files. Returns them in a fixed order.
    pub fn commit(mut self) -> Result<Vec<Written>> {
        let lineup_path = self.lineup.dest().to_path_buf();
        self.lineup
            .write_all(if self.channels == 0 { b"]\n" } else { b"\n]\n" })
            .with_context(|| format!("cannot write {}", lineup_path.display()))?;
        let mode = self.file_mode.unwrap_or(if self.carries_credentials {
            0o600
        } else {
            0o644
        });
        let public = self.file_mode.unwrap_or(0o644);
        let lineup_url = format!("{}/lineup.json", self.base_url);
        let discover = Discover {
            friendly_name: &self.friendly_name,
            manufacturer: MANUFACTURER,
            model_number: MODEL,
            firmware_name: FIRMWARE_NAME,
            firmware_version: FIRMWARE_VERSION,
            device_id: &self.device_id,
            device_auth: "lineup",
            base_url: &self.base_url,
            lineup_url: &lineup_url,
            tuner_count: self.tuners,
        };
        let status = LineupStatus {
            scan_in_progress: 0,
            scan_possible: 1,
            source: "Cable",
            source_list: ["Cable"],
        };
        let mut written = Vec::with_capacity(4);
        written.push(write_file(
            &self.dir.join("discover.json"),
            &json(&discover),
            public,
        )?);
        self.lineup.set_mode(mode);
        written.push(self.lineup.commit()?);
        written.push(write_file(
            &self.dir.join("lineup_status.json"),
            &json(&status),
            public,
        )?);
        let xml = device_xml(&self.base_url, &self.friendly_name, &self.device_id);
        written.push(write_file(
            &self.dir.join("device.xml"),
            xml.as_bytes(),
            public,
        )?);
        Ok(written)
    }
}

/// Pretty JSON with a final newline.
fn json(value: &impl Serialize) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(value).expect("serialising to memory");
    out.push(b'\n');
    out
}

fn write_file(dest: &Path, bytes: &[u8], mode: u32) -> Result<Written> {
    let mut file = AtomicFile::create(dest)?;
    file.write_all(bytes)
        .with_context(|| format!("cannot write {}", dest.display()))?;
    file.set_mode(mode);
    file.commit()
}

/// The UPnP description players fetch at `BaseURL/device.xml`.
fn device_xml(base_url: &str, friendly_name: &str, device_id: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <root xmlns=\"urn:schemas-upnp-org:device-1-0\">\n\
         \x20 <specVersion>\n    <major>1</major>\n    <minor>0</minor>\n  </specVersion>\n\
         \x20 <URLBase>{}</URLBase>\n\
         \x20 <device>\n\
         \x20   <deviceType>urn:schemas-upnp-org:device:MediaServer:1</deviceType>\n\
         \x20   <friendlyName>{}</friendlyName>\n\
         \x20   <manufacturer>{MANUFACTURER}</manufacturer>\n\
         \x20   <modelName>{MODEL}</modelName>\n\
         \x20   <modelNumber>{MODEL}</modelNumber>\n\
         \x20   <serialNumber>{device_id}</serialNumber>\n\
         \x20   <UDN>uuid:{device_id}</UDN>\n\
         \x20 </device>\n\
         </root>\n",
        xml_escape(base_url),
        xml_escape(friendly_name),
    )
}

fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// libhdhomerun's nibble substitution for the device-id checksum
/// (`hdhomerun_discover_validate_device_id`).
const CHECKSUM_LOOKUP: [u8; 16] = [
    0xA, 0x5, 0xF, 0x6, 0x7, 0xC, 0x1, 0xB, 0x9, 0x2, 0x8, 0xD, 0x4, 0x3, 0xE, 0x0,
];

/// XOR of the nibbles of `id`, the odd ones (from the top) through [`CHECKSUM_LOOKUP`]; a valid
/// id gives zero. With `include_last` false the lowest nibble is left out: the value it must
/// have.
fn checksum(id: u32, include_last: bool) -> u8 {
    let nibble = |shift: u32| ((id >> shift) & 0xF) as u8;
    let mut sum = 0;
    for shift in [28, 20, 12, 4] {
        sum ^= CHECKSUM_LOOKUP[usize::from(nibble(shift))];
    }
    for shift in [24, 16, 8] {
        sum ^= nibble(shift);
    }
    if include_last {
        sum ^= nibble(0);
    }
    sum
}

/// Whether `id` passes libhdhomerun's device-id check.
pub fn device_id_is_valid(id: u32) -> bool {
    checksum(id, true) == 0
}

/// The proxy's `DeviceID`: eight upper-case hex digits, the first seven from the SHA-256 of
/// its name, the last the checksum digit.
pub fn device_id(proxy: &str) -> String {
    let digest = Sha256::digest(proxy.as_bytes());
    let high = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) & !0xF;
    let id = high | u32::from(checksum(high, false));
    format!("{id:08X}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_ids_pass_the_checksum_and_are_stable() {
        for name in ["p", "plex", "living room", "ünïcode"] {
            let id = device_id(name);
            assert_eq!(id.len(), 8);
            assert_eq!(id, device_id(name));
            assert!(device_id_is_valid(u32::from_str_radix(&id, 16).unwrap()));
        }
        assert_ne!(device_id("a"), device_id("b"));
        // Exactly one last digit makes a valid id.
        let high = 0x1234_5670;
        let valid = (0..16).filter(|d| device_id_is_valid(high | d)).count();
        assert_eq!(valid, 1);
    }
}
