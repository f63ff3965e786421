//! Validating written guides with the real tools: `xmllint --dtdvalid` against the XMLTV DTD
//! that Debian's xmltv-util ships, and that package's `tv_validate_file`. Shared by the guide
//! unit tests and the integration tests; both fail (never skip) without the tools, which
//! `.ci/run` installs (libxml2-utils, xmltv-util).

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

/// Where Debian's xmltv-util puts the DTD.
pub const DTD: &str = "/usr/share/xmltv/xmltv.dtd";

/// Validate `path` against the XMLTV DTD. Fails (does not skip) without the tools: CI
/// installs them.
pub fn validate(path: &Path) {
    if path.extension().is_some_and(|e| e == "gz") {
        // tv_validate_file reads plain files only: check the unpacked bytes.
        let plain = path.with_extension("unpacked");
        let mut gz = flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap());
        std::io::copy(&mut gz, &mut std::fs::File::create(&plain).unwrap()).unwrap();
        return validate(&plain);
    }
    assert!(
        Path::new(DTD).exists(),
        "{DTD} is missing: install the Debian package xmltv-util (apt-get install xmltv-util)"
    );
    let out = Command::new("xmllint")
        .args(["--noout", "--dtdvalid", DTD])
        .arg(path)
        .output()
        .expect("xmllint is missing: install the Debian package libxml2-utils");
    assert!(
        out.status.success(),
        "xmllint rejects {}:\n{}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    // tv_validate_file reads the DTD through XMLTV::Supplement; point it at the local copy.
    let out = Command::new("tv_validate_file")
        .env("XMLTV_SUPPLEMENT", Path::new(DTD).parent().unwrap())
        .arg(path)
        .output()
        .expect("tv_validate_file is missing: install the Debian package xmltv-util");
    assert!(
        out.status.success(),
        "tv_validate_file rejects {}:\n{}{}",
        path.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
