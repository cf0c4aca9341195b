//! Colour themes from `themes/*.toml`. Built-ins are embedded; a user file overrides only the fields it
//! sets, on top of the article's palette.

use ratatui::style::Color;
use serde::Deserialize;

pub const BUILTIN: [(&str, &str); 3] = [
    ("article", include_str!("../../themes/article.toml")),
    ("light", include_str!("../../themes/light.toml")),
    ("high-contrast", include_str!("../../themes/high-contrast.toml")),
];

#[derive(Debug, Clone, Deserialize)]
struct ThemeFile {
    name: String,
    background: String,
    surface: String,
    border: String,
    muted: String,
    text: String,
    accent: String,
    warning: String,
    train: String,
    val: String,
    green: [String; 5],
    red: [String; 5],
}

/// Resolved colours used by every view.
#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    pub name: String,
    pub background: Color,
    pub surface: Color,
    pub border: Color,
    pub muted: Color,
    pub text: Color,
    pub accent: Color,
    pub warning: Color,
    pub train: Color,
    pub val: Color,
    /// Correct-cell scale, darkest (dark themes: weakest) first.
    pub green: [Color; 5],
    /// Error-cell scale.
    pub red: [Color; 5],
}

#[derive(Debug, thiserror::Error)]
pub enum ThemeError {
    #[error("{0}: no such theme (built-in: article, light, high-contrast; or a path to a .toml file)")]
    Unknown(String),
    #[error("{path}: invalid theme: {message}")]
    Invalid { path: String, message: String },
}

/// A colour that is not `#RRGGBB`.
#[derive(Debug, thiserror::Error)]
#[error("colour '{0}' is not #RRGGBB")]
pub struct BadColour(String);

fn hex(s: &str) -> Result<Color, BadColour> {
    let h = s.trim().trim_start_matches('#');
    let v = (h.len() == 6).then(|| u32::from_str_radix(h, 16).ok()).flatten().ok_or_else(|| BadColour(s.to_string()))?;
    Ok(Color::Rgb((v >> 16) as u8, (v >> 8) as u8, v as u8))
}

impl Theme {
    pub fn article() -> Theme {
        Theme::from_toml("article", BUILTIN[0].1).expect("built-in theme parses")
    }

    /// Parse a theme file, filling fields it lacks from the article theme.
    pub fn from_toml(origin: &str, text: &str) -> Result<Theme, ThemeError> {
        let invalid = |message: String| ThemeError::Invalid { path: origin.to_string(), message };
        let mut base: toml::Table = BUILTIN[0].1.parse().map_err(|e: toml::de::Error| invalid(e.to_string()))?;
        let user: toml::Table = text.parse().map_err(|e: toml::de::Error| invalid(e.message().to_string()))?;
        for (k, v) in user {
            base.insert(k, v);
        }
        let f: ThemeFile = base.try_into().map_err(|e: toml::de::Error| invalid(e.message().to_string()))?;
        let c = |s: &str| hex(s).map_err(|e| invalid(e.to_string()));
        let scale = |a: &[String; 5]| -> Result<[Color; 5], ThemeError> { Ok([c(&a[0])?, c(&a[1])?, c(&a[2])?, c(&a[3])?, c(&a[4])?]) };
        Ok(Theme {
            name: f.name.clone(),
            background: c(&f.background)?,
            surface: c(&f.surface)?,
            border: c(&f.border)?,
            muted: c(&f.muted)?,
            text: c(&f.text)?,
            accent: c(&f.accent)?,
            warning: c(&f.warning)?,
            train: c(&f.train)?,
            val: c(&f.val)?,
            green: scale(&f.green)?,
            red: scale(&f.red)?,
        })
    }

    /// A built-in name, or a path to a TOML file.
    pub fn load(name_or_path: &str) -> Result<Theme, ThemeError> {
        if let Some((_, text)) = BUILTIN.iter().find(|(n, _)| *n == name_or_path) {
            return Theme::from_toml(name_or_path, text);
        }
        let p = std::path::Path::new(name_or_path);
        if p.is_file() {
            let text = std::fs::read_to_string(p).map_err(|e| ThemeError::Invalid { path: name_or_path.into(), message: e.to_string() })?;
            return Theme::from_toml(name_or_path, &text);
        }
        Err(ThemeError::Unknown(name_or_path.to_string()))
    }

    /// The next built-in theme (for the `t` key).
    pub fn next_builtin(&self) -> Theme {
        let i = BUILTIN.iter().position(|(n, _)| *n == self.name).map(|i| (i + 1) % BUILTIN.len()).unwrap_or(0);
        Theme::from_toml(BUILTIN[i].0, BUILTIN[i].1).unwrap_or_else(|_| Theme::article())
    }

    /// Colour for a confusion cell: green scale on the diagonal, red off it, stronger with the share.
    pub fn cell(&self, diagonal: bool, share: f64) -> Color {
        let scale = if diagonal { &self.green } else { &self.red };
        if !diagonal && share <= 0.0 {
            return self.surface;
        }
        let k = ((share.clamp(0.0, 1.0) * 4.0).round() as usize).min(4);
        scale[k]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_parse_and_article_is_the_papers_palette() {
        for (n, t) in BUILTIN {
            Theme::from_toml(n, t).unwrap();
        }
        let a = Theme::article();
        assert_eq!(a.background, Color::Rgb(0x1F, 0x1F, 0x1F));
        assert_eq!(a.green[4], Color::Rgb(0xD0, 0xF0, 0xC0));
        assert_eq!(a.red[2], Color::Rgb(0x9E, 0x17, 0x17));
    }

    #[test]
    fn user_file_overrides_only_what_it_sets() {
        let t = Theme::from_toml("mine.toml", "name = \"mine\"\naccent = \"#123456\"\n").unwrap();
        assert_eq!(t.accent, Color::Rgb(0x12, 0x34, 0x56));
        assert_eq!(t.background, Theme::article().background);
        let e = Theme::from_toml("bad.toml", "accent = \"blue\"\n").unwrap_err().to_string();
        assert!(e.contains("bad.toml") && e.contains("#RRGGBB"), "{e}");
        assert!(Theme::load("nope").is_err());
    }

    #[test]
    fn cycling_visits_every_builtin() {
        let a = Theme::article();
        let b = a.next_builtin();
        let c = b.next_builtin();
        assert_eq!((b.name.as_str(), c.name.as_str(), c.next_builtin().name.as_str()), ("light", "high-contrast", "article"));
    }
}
