//! The report as a browser shows it: the synthetic run's `report.html` opened in headless
//! Chromium (Debian's `chromium`, installed by `scripts/install-deps.sh`), screenshotted, and
//! the screenshot checked for the plots: the fault windows' shade in several plots, the
//! Regions' colours, and plenty of drawing where the plots are.
//!
//! Set `KMSIM_REPORT_SCREENSHOT=path.png` to keep the screenshot.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use kmsim_experiment as kx;

#[path = "../src/report/synthetic.rs"]
mod synthetic;

/// The shade of fault windows (`report::plots::SHADE`).
const SHADE: [u8; 3] = [255, 221, 170];
/// The first two Regions' colours (`report::plots::PALETTE`).
const REGION_COLOURS: [[u8; 3]; 2] = [[31, 119, 180], [44, 160, 44]];
const WIDTH: u32 = 1400;
const HEIGHT: u32 = 3000;

fn chromium() -> PathBuf {
    for name in ["chromium", "chromium-browser"] {
        if let Ok(out) = Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {name}"))
            .output()
        {
            let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if out.status.success() && !path.is_empty() {
                return PathBuf::from(path);
            }
        }
    }
    panic!(
        "neither `chromium` nor `chromium-browser` is on PATH: this test opens the experiment \
         report in headless Chromium; scripts/install-deps.sh installs Debian's `chromium`"
    );
}

/// Runs Chromium to screenshot `page` into `png`, killing its whole process group after 60 s.
fn screenshot(page: &Path, png: &Path, profile: &Path) {
    let child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--force-device-scale-factor=1",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("--window-size={WIDTH},{HEIGHT}"))
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("chromium starts");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(out) => {
            let out = out.expect("chromium ran");
            assert!(
                out.status.success() && png.exists(),
                "chromium failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Err(_) => {
            // The process group is chromium's own (process_group(0) above): its helpers too.
            let _ = Command::new("kill")
                .arg("-9")
                .arg(format!("-{pid}"))
                .status();
            panic!("chromium did not finish the screenshot within 60 s");
        }
    }
}

/// An 8-bit RGB or RGBA, non-interlaced PNG (what Chromium writes), decoded to RGB rows.
struct Image {
    width: usize,
    height: usize,
    rgb: Vec<[u8; 3]>,
}

impl Image {
    fn at(&self, x: usize, y: usize) -> [u8; 3] {
        self.rgb[y * self.width + x]
    }
}

fn decode_png(bytes: &[u8]) -> Image {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
    let (mut width, mut height, mut channels) = (0usize, 0usize, 0usize);
    let mut idat = Vec::new();
    let mut at = 8;
    while at + 8 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        let kind = &bytes[at + 4..at + 8];
        let data = &bytes[at + 8..at + 8 + len];
        match kind {
            b"IHDR" => {
                width = u32::from_be_bytes(data[0..4].try_into().expect("4")) as usize;
                height = u32::from_be_bytes(data[4..8].try_into().expect("4")) as usize;
                assert_eq!(data[8], 8, "8 bits per channel");
                channels = match data[9] {
                    2 => 3,
                    6 => 4,
                    other => panic!("colour type {other} not handled"),
                };
                assert_eq!(data[12], 0, "not interlaced");
            }
            b"IDAT" => idat.extend_from_slice(data),
            b"IEND" => break,
            _ => {}
        }
        at += 12 + len;
    }
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&idat[..])
        .read_to_end(&mut raw)
        .expect("zlib data");
    let stride = width * channels;
    assert_eq!(raw.len(), height * (stride + 1), "every row present");
    let mut pixels = vec![0u8; height * stride];
    for y in 0..height {
        let filter = raw[y * (stride + 1)];
        let row = &raw[y * (stride + 1) + 1..(y + 1) * (stride + 1)];
        for i in 0..stride {
            let a = if i >= channels {
                pixels[y * stride + i - channels]
            } else {
                0
            };
            let b = if y > 0 {
                pixels[(y - 1) * stride + i]
            } else {
                0
            };
            let c = if y > 0 && i >= channels {
                pixels[(y - 1) * stride + i - channels]
            } else {
                0
            };
            let predicted = match filter {
                0 => 0,
                1 => a,
                2 => b,
                3 => ((u16::from(a) + u16::from(b)) / 2) as u8,
                4 => {
                    let p = i16::from(a) + i16::from(b) - i16::from(c);
                    let (pa, pb, pc) = (
                        (p - i16::from(a)).abs(),
                        (p - i16::from(b)).abs(),
                        (p - i16::from(c)).abs(),
                    );
                    if pa <= pb && pa <= pc {
                        a
                    } else if pb <= pc {
                        b
                    } else {
                        c
                    }
                }
                other => panic!("filter {other}"),
            };
            pixels[y * stride + i] = row[i].wrapping_add(predicted);
        }
    }
    let rgb = pixels
        .chunks(channels)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    Image { width, height, rgb }
}

fn near(p: [u8; 3], c: [u8; 3]) -> bool {
    p.iter().zip(c).all(|(a, b)| a.abs_diff(b) <= 4)
}

#[test]
fn the_report_renders_its_plots_in_chromium() {
    let run = synthetic::run();
    let dir = tempfile::tempdir().expect("temp dir");
    kx::report::write_all(dir.path(), &run.input()).expect("report written");
    let page = dir.path().join("report.html");
    let png = dir.path().join("report.png");
    screenshot(&page, &png, &dir.path().join("profile"));
    let bytes = std::fs::read(&png).expect("screenshot");
    if let Some(keep) = std::env::var_os("KMSIM_REPORT_SCREENSHOT") {
        std::fs::write(keep, &bytes).expect("screenshot kept");
    }
    let img = decode_png(&bytes);
    assert_eq!((img.width, img.height), (WIDTH as usize, HEIGHT as usize));

    // Rows where the fault shade appears, grouped into bands: the two latency panels, the
    // throughput plot and the availability strip's fault row each make one.
    let shaded: Vec<usize> = (0..img.height)
        .filter(|y| {
            (0..img.width)
                .filter(|x| near(img.at(*x, *y), SHADE))
                .count()
                > 20
        })
        .collect();
    let mut bands: Vec<(usize, usize)> = Vec::new();
    for y in shaded {
        match bands.last_mut() {
            Some(b) if y <= b.1 + 3 => b.1 = y,
            _ => bands.push((y, y)),
        }
    }
    assert!(
        bands.len() >= 4,
        "the shade in four plot areas, found {bands:?}"
    );
    let shade_pixels: usize = img.rgb.iter().filter(|p| near(**p, SHADE)).count();
    assert!(
        shade_pixels > 20_000,
        "fault windows shaded: {shade_pixels} pixels"
    );

    // Where the plots are, much is drawn: from the first shaded band to the last.
    let (top, bottom) = (bands[0].0, bands[bands.len() - 1].1);
    let drawn = (top..=bottom)
        .flat_map(|y| (0..img.width).map(move |x| (x, y)))
        .filter(|(x, y)| img.at(*x, *y) != [255, 255, 255])
        .count();
    let area = (bottom - top + 1) * img.width;
    assert!(
        drawn * 10 > area,
        "the plots are drawn: {drawn} non-white pixels of {area}"
    );
    // The Regions' colours: the scatter, the throughput lines and the sync-lag CDF.
    for c in REGION_COLOURS {
        let n = img.rgb.iter().filter(|p| near(**p, c)).count();
        assert!(n > 500, "colour {c:?} drawn in {n} pixels");
    }
}
