//! The paper's published numbers (Xia et al., ICLR 2023, Tables 1 and 2), for side-by-side
//! comparison in evaluation reports. Copied from `docs/reference/paper-tables.md`.

/// Table 1, Gaussian8 ×4, PSNR / SSIM (Y, border 4): `(method, set, psnr, ssim)`.
pub const TABLE1: &[(&str, &str, f64, f64)] = &[
    ("Bicubic", "Set5", 24.57, 0.7108),
    ("Bicubic", "Set14", 22.79, 0.6032),
    ("Bicubic", "B100", 23.29, 0.5786),
    ("DASR", "Set5", 31.46, 0.8789),
    ("DASR", "Set14", 28.11, 0.7603),
    ("DASR", "B100", 27.44, 0.7214),
    ("KDSR_S-M", "Set5", 32.02, 0.8892),
    ("KDSR_S-M", "Set14", 28.46, 0.7761),
    ("KDSR_S-M", "B100", 27.52, 0.7281),
    ("KDSR_S-L", "Set5", 32.11, 0.8933),
    ("KDSR_S-L", "Set14", 28.68, 0.7867),
    ("KDSR_S-L", "B100", 27.64, 0.7300),
];

/// Table 2, Set14, anisotropic kernels k1…k9 (the de-facto DASR set) × noise, PSNR:
/// `(method, noise, [k1..k9])`.
pub const TABLE2: &[(&str, u32, [f64; 9])] = &[
    (
        "DASR",
        0,
        [
            27.20, 27.62, 27.74, 27.85, 27.82, 27.62, 27.38, 27.44, 26.27,
        ],
    ),
    (
        "DASR",
        10,
        [
            25.26, 25.57, 25.64, 25.69, 25.62, 25.54, 25.42, 25.20, 24.37,
        ],
    ),
    (
        "DASR",
        20,
        [
            23.68, 23.87, 24.20, 24.32, 24.09, 23.91, 23.76, 23.81, 22.87,
        ],
    ),
    (
        "KDSR_S",
        0,
        [
            27.67, 27.99, 28.14, 28.20, 28.12, 27.99, 27.80, 27.87, 26.52,
        ],
    ),
    (
        "KDSR_S",
        10,
        [
            25.74, 25.91, 25.97, 26.00, 25.96, 25.88, 25.75, 25.50, 24.67,
        ],
    ),
    (
        "KDSR_S",
        20,
        [
            24.72, 24.89, 24.92, 24.89, 24.92, 24.82, 24.70, 24.59, 23.84,
        ],
    ),
];

/// The paper's Table 1 rows for a test set name (`Set5`, `Set14`, `B100`; `BSD100` is accepted).
pub fn table1_for(set: &str) -> Vec<(&'static str, f64, f64)> {
    let set = if set.eq_ignore_ascii_case("bsd100") {
        "B100"
    } else {
        set
    };
    TABLE1
        .iter()
        .filter(|(_, s, _, _)| s.eq_ignore_ascii_case(set))
        .map(|(m, _, p, s)| (*m, *p, *s))
        .collect()
}

/// Markdown lines comparing a measured Gaussian8 mean with the paper's rows for `set`.
pub fn table1_markdown(
    set: &str,
    ours_label: &str,
    psnr: f64,
    ssim: f64,
    bicubic: (f64, f64),
) -> String {
    let rows = table1_for(set);
    if rows.is_empty() {
        return String::new();
    }
    let mut s = format!(
        "\nNext to the paper (Table 1, Gaussian8 ×4, {set}; the paper trains on DF2K for ~500K iterations):\n\n| method | PSNR | SSIM |\n|---|---|---|\n"
    );
    for (m, p, ss) in rows {
        s += &format!("| {m} (paper) | {p:.2} | {ss:.4} |\n");
    }
    s += &format!(
        "| bicubic (ours, same LR) | {:.2} | {:.4} |\n",
        bicubic.0, bicubic.1
    );
    s += &format!("| **{ours_label} (ours)** | **{psnr:.2}** | **{ssim:.4}** |\n");
    s
}
