//! Tiled runs equal untiled runs within 1e-4 (crop-centre tiling with the receptive radius as
//! context, one IDR per image), and the memory budget sizes the tiles. Graphs exported from the
//! official tiny student weights (random init, not a trained model).
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use common::{check, in_planar, models};
use kdsr_runtime::{Error, Options, Planar, Upscaler};

fn with(path: &std::path::Path, tile: Option<usize>, budget: usize) -> Upscaler {
    Upscaler::load(
        path,
        Options {
            tile,
            mem_budget_mib: budget,
            threads: 1,
            ..Options::default()
        },
    )
    .unwrap()
}

#[test]
fn tiled_equals_untiled_for_split_and_folded_graphs() {
    let m = models();
    let lr = in_planar();
    for model in [&m.split, &m.folded] {
        let whole = with(model, None, 4096);
        let untiled = whole.upscale(&lr).unwrap();
        assert_eq!(whole.tile_grid(120, 96, 0.0).unwrap().len(), 1);
        // Windows from 24 (6-pixel cores, split only: 221 tiles) to nearly the image.
        let tiles: &[usize] = if *model == m.split {
            &[24, 40, 100]
        } else {
            &[40, 100]
        };
        for &tile in tiles {
            let up = with(model, Some(tile), 4096);
            let grid = up.tile_grid(120, 96, 0.0).unwrap();
            assert!(grid.len() > 1, "tile {tile}: {} tiles", grid.len());
            let tiled = up.upscale(&lr).unwrap();
            check(
                &format!("{} tile {tile} ({} tiles)", model.display(), grid.len()),
                tiled.data(),
                untiled.data(),
                1e-4,
            );
        }
    }
}

#[test]
fn tiled_equals_untiled_with_a_given_idr_and_gray_input() {
    let m = models();
    let lr = in_planar();
    let gray = Planar::new(1, 120, 96, lr.plane(0).to_vec()).unwrap();
    let a = with(&m.split, None, 4096)
        .upscale_with_idr(&gray, &m.folded_idr)
        .unwrap();
    let b = with(&m.split, Some(27), 4096)
        .upscale_with_idr(&gray, &m.folded_idr)
        .unwrap();
    check("gray, tile 27", b.data(), a.data(), 1e-4);
}

#[test]
fn a_small_budget_tiles_a_large_image_and_matches_the_untiled_run() {
    let m = models();
    // A 360×480 image: 4 copies of the photo side by side (content is irrelevant).
    let lr = in_planar();
    let (h, w) = (240, 192);
    let mut data = Vec::with_capacity(3 * h * w);
    for c in 0..3 {
        for y in 0..h {
            for x in 0..w {
                data.push(lr.at(c, y % 120, x % 96));
            }
        }
    }
    let big = Planar::new(3, h, w, data).unwrap();
    let small = with(&m.split, None, 64);
    let grid = small
        .tile_grid(h, w, 4.0 * (3 * h * w) as f64 * 17.0)
        .unwrap();
    assert!(grid.len() > 1, "64 MiB should tile 240x192 at C=16");
    let tiled = small.upscale(&big).unwrap();
    let untiled = with(&m.split, None, 4096).upscale(&big).unwrap();
    check(
        &format!("budget 64 MiB, {} tiles", grid.len()),
        tiled.data(),
        untiled.data(),
        1e-4,
    );
}

#[test]
fn budget_errors_say_what_to_change() {
    let m = models();
    // A window that leaves no core with 9 px of context.
    let up = with(&m.split, Some(18), 4096);
    let e = up.upscale(&in_planar()).unwrap_err();
    assert!(matches!(e, Error::Budget(_)), "{e}");
    assert!(e.to_string().contains("--tile"), "{e}");
    // A dynamic graph cannot be tiled: it refuses an image over its budget instead.
    let dynamic = with(&m.dynamic, None, 50);
    let e = dynamic.tile_grid(2000, 2000, 0.0).unwrap_err();
    assert!(e.to_string().contains("split graphs"), "{e}");
    // Image buffers alone over the budget.
    let e = with(&m.split, None, 50)
        .tile_grid(4000, 4000, 4.0e9)
        .unwrap_err();
    assert!(e.to_string().contains("--mem-budget"), "{e}");
}
