//! Terminal image previews for the gallery and data views, via ratatui-image. Halfblocks work in any
//! colour terminal (SSH, tmux); kitty / sixel / iTerm2 are used when the terminal answers the query.

use ratatui_image::picker::{Picker, ProtocolType};
use ratatui_image::protocol::StatefulProtocol;
use std::collections::HashMap;

const CAP: usize = 24;

pub struct ImageCache {
    picker: Picker,
    detected: ProtocolType,
    protos: HashMap<String, Result<StatefulProtocol, PreviewError>>,
}

/// Why a file has no preview: shown in its place.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{path}: {source}")]
pub struct PreviewError {
    path: String,
    source: crate::data::decode::DecodeError,
}

fn name(p: ProtocolType) -> &'static str {
    match p {
        ProtocolType::Halfblocks => "halfblocks",
        ProtocolType::Sixel => "sixel",
        ProtocolType::Kitty => "kitty",
        ProtocolType::Iterm2 => "iTerm2",
    }
}

/// Terminals known to answer the graphics query (kitty, WezTerm, iTerm2, Ghostty, foot, Konsole…).
fn graphics_terminal() -> bool {
    let var = |k: &str| std::env::var(k).unwrap_or_default().to_ascii_lowercase();
    let term = var("TERM");
    let prog = var("TERM_PROGRAM");
    std::env::var_os("KITTY_WINDOW_ID").is_some()
        || std::env::var_os("WEZTERM_EXECUTABLE").is_some()
        || std::env::var_os("KONSOLE_VERSION").is_some()
        || ["kitty", "ghostty", "foot", "mlterm", "wezterm"].iter().any(|t| term.contains(t))
        || ["iterm.app", "wezterm", "ghostty"].iter().any(|t| prog.contains(t))
}

impl ImageCache {
    /// Halfblocks only (tests, and terminals that do not answer).
    pub fn halfblocks() -> ImageCache {
        ImageCache { picker: Picker::halfblocks(), detected: ProtocolType::Halfblocks, protos: HashMap::new() }
    }

    /// Pick a protocol. `TUMORSCOPE_IMAGES=halfblocks|kitty|sixel|iterm2` forces one. Otherwise the
    /// terminal is queried only when its environment names a graphics-capable terminal: where nothing
    /// answers (plain SSH, tmux without passthrough) the query's reader would swallow the next keys.
    pub fn detect() -> ImageCache {
        let forced = std::env::var("TUMORSCOPE_IMAGES").ok().and_then(|v| match v.to_ascii_lowercase().as_str() {
            "halfblocks" => Some(ProtocolType::Halfblocks),
            "kitty" => Some(ProtocolType::Kitty),
            "sixel" => Some(ProtocolType::Sixel),
            "iterm2" | "iterm" => Some(ProtocolType::Iterm2),
            _ => None,
        });
        if let Some(p) = forced {
            let mut picker = Picker::halfblocks();
            picker.set_protocol_type(p);
            return ImageCache { picker, detected: p, protos: HashMap::new() };
        }
        if !graphics_terminal() {
            return ImageCache::halfblocks();
        }
        let picker = Picker::from_query_stdio();
        let _ = crossterm::terminal::enable_raw_mode();
        match picker {
            Ok(picker) => {
                let detected = picker.protocol_type();
                ImageCache { picker, detected, protos: HashMap::new() }
            }
            Err(_) => ImageCache::halfblocks(),
        }
    }

    pub fn protocol(&self) -> &'static str {
        name(self.picker.protocol_type())
    }

    /// Switch between the detected protocol and halfblocks.
    pub fn toggle_protocol(&mut self) -> String {
        let next = if self.picker.protocol_type() == ProtocolType::Halfblocks { self.detected } else { ProtocolType::Halfblocks };
        self.picker.set_protocol_type(next);
        self.protos.clear();
        if next == ProtocolType::Halfblocks && self.detected == ProtocolType::Halfblocks {
            "halfblocks (no other protocol was detected)".into()
        } else {
            name(next).into()
        }
    }

    /// The drawable image for an image made in memory (a Grad-CAM overlay), under `key`.
    pub fn get_made(&mut self, key: &str, make: impl FnOnce() -> image::RgbImage) -> &mut StatefulProtocol {
        if !matches!(self.protos.get(key), Some(Ok(_))) {
            if self.protos.len() >= CAP {
                self.protos.clear();
            }
            let p = self.picker.new_resize_protocol(image::DynamicImage::ImageRgb8(make()));
            self.protos.insert(key.to_string(), Ok(p));
        }
        match self.protos.get_mut(key) {
            Some(Ok(p)) => p,
            _ => unreachable!("inserted above"),
        }
    }

    /// The drawable image for a file (or a DICOM/NIfTI slice, windowed as `reading` says), loading it
    /// on first use.
    pub fn get(&mut self, path: &str, reading: &crate::data::decode::Reading) -> Result<&mut StatefulProtocol, PreviewError> {
        if !self.protos.contains_key(path) && self.protos.len() >= CAP {
            self.protos.clear();
        }
        let picker = &mut self.picker;
        let entry = self.protos.entry(path.to_string()).or_insert_with(|| {
            crate::data::decode::open_rgb(std::path::Path::new(path), reading)
                .map(|img| picker.new_resize_protocol(image::DynamicImage::ImageRgb8(img)))
                .map_err(|source| PreviewError { path: path.to_string(), source })
        });
        match entry {
            Ok(p) => Ok(p),
            Err(e) => Err(e.clone()),
        }
    }
}
