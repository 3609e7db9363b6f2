//! The fuzz targets: what `kdsr-edge` does with untrusted bytes.
//!
//! - `image`: an input image as `kdsr-edge upscale` handles it: content sniffing, the container
//!   walk (JPEG marker walk for truncation, TIFF page count, animated WebP), the header checks
//!   (max pixels, the output format's depth/alpha/size, image buffers and tile grid), then
//!   decoding; the decoded size must be the one the header announced.
//! - `onnx`: an ONNX graph as `Upscaler::load` checks it (protobuf, `kdsr.*` metadata, inputs and
//!   outputs of the declared kind, output shapes at a probe size); seeds are the tiny graphs and
//!   a shipped one, and a structure-aware mutator edits the metadata and graph signature.
//! - `ckpt`: safetensors-based files: `.idr` (`Idr::from_bytes` + `check_values`), `.bank`
//!   (`Bank::from_bytes`), checkpoints (`weights_from_bytes` against the student-tiny spec,
//!   `weights_from_bytes_unchecked`, the embedded `kdsr.config`); a structure-aware mutator
//!   edits the JSON header and rewrites its length prefix.

use std::path::Path;

use kdsr_core::idr::Idr;
use kdsr_core::io::{BitDepth, ColorKind};
use kdsr_core::spec::KdsrConfig;
use kdsr_core::spec::checkpoint::{weights_from_bytes, weights_from_bytes_unchecked};
use kdsr_runtime::bank::Bank;
use kdsr_runtime::graph::check_graph_bytes;
use kdsr_runtime::image::image_buffer_bytes;
use kdsr_runtime::io::{OutFormat, ReadOptions, open_image_bytes};
use kdsr_runtime::tiling::TileGrid;
use prost::Message;
use tract_onnx::pb::{ModelProto, StringStringEntryProto};

use crate::engine::{Rng, Target};

/// The targets by name.
pub fn by_name(name: &str) -> Option<Box<dyn Target>> {
    match name {
        "image" => Some(Box::new(ImageTarget)),
        "onnx" => Some(Box::new(OnnxTarget)),
        "ckpt" => Some(Box::new(CkptTarget {
            tiny: KdsrConfig::student_tiny(),
        })),
        _ => None,
    }
}

/// All target names.
pub const NAMES: &[&str] = &["image", "onnx", "ckpt"];

/// Image decoding and `kdsr-edge upscale`'s input handling.
pub struct ImageTarget;

const OUT_FORMATS: &[OutFormat] = &[
    OutFormat::Png,
    OutFormat::Jpeg,
    OutFormat::WebP,
    OutFormat::Tiff,
    OutFormat::Pam,
    OutFormat::Ppm,
    OutFormat::Pgm,
];

impl Target for ImageTarget {
    fn name(&self) -> &'static str {
        "image"
    }

    fn run(&self, data: &[u8]) {
        // 1 MP keeps each decode short; the guard itself is what is exercised.
        let options = ReadOptions {
            max_pixels: 1 << 20,
            allow_truncated: data.len() % 2 == 1,
        };
        let Ok(pending) = open_image_bytes(data.to_vec(), Path::new("fuzz-input"), options) else {
            return;
        };
        let hdr = *pending.header();
        let (w, h) = (hdr.width as usize, hdr.height as usize);
        if let (Some(color), Some(depth)) = (hdr.color, hdr.bit_depth) {
            for f in OUT_FORMATS {
                let _ = f.check_holds(color, hdr.alpha, depth);
                let _ = f.check_size((w * 4) as u64, (h * 4) as u64);
            }
            let _ = image_buffer_bytes(h, w, color.channels(), hdr.alpha, depth, 4);
        } else {
            let _ = image_buffer_bytes(
                h,
                w,
                ColorKind::Rgb.channels(),
                hdr.alpha,
                BitDepth::Eight,
                4,
            );
        }
        let _ = TileGrid::new(h, w, (64, 64), 9);
        if let Ok(img) = pending.decode() {
            let (ih, iw) = (img.image.rgb.height(), img.image.rgb.width());
            assert_eq!(
                (iw, ih),
                (w, h),
                "decoded size differs from the header's {}x{}",
                hdr.width,
                hdr.height
            );
        }
    }

    fn dictionary(&self) -> &[&[u8]] {
        &[
            b"\x89PNG\r\n\x1a\n",
            b"IHDR",
            b"IDAT",
            b"IEND",
            b"iCCP",
            b"eXIf",
            b"acTL",
            b"fcTL",
            b"\xff\xd8",
            b"\xff\xd9",
            b"\xff\xda",
            b"\xff\xc0",
            b"\xff\xc2",
            b"\xff\xc4",
            b"\xff\xdb",
            b"\xff\xdd",
            b"\xff\xe1",
            b"\xff\xe2",
            b"Exif\0\0",
            b"RIFF",
            b"WEBP",
            b"VP8 ",
            b"VP8L",
            b"VP8X",
            b"ANIM",
            b"ANMF",
            b"ALPH",
            b"II*\0",
            b"MM\0*",
            b"P6\n",
            b"P5\n",
            b"P7\n",
            b"WIDTH ",
            b"HEIGHT ",
            b"DEPTH ",
            b"MAXVAL 65535\n",
            b"TUPLTYPE RGB_ALPHA\n",
            b"ENDHDR\n",
            b"GIF89a",
            b"65535",
            b"4294967295",
        ]
    }
}

/// ONNX graph loading with its metadata checks.
pub struct OnnxTarget;

const META_KEYS: &[&str] = &[
    "kdsr.format",
    "kdsr.graph",
    "kdsr.preset",
    "kdsr.scale",
    "kdsr.n_feats",
    "kdsr.n_blocks",
    "kdsr.n_resblocks",
    "kdsr.precision",
    "kdsr.weights_hash",
    "kdsr.idr_source",
];

const META_VALUES: &[&str] = &[
    "",
    "0",
    "1",
    "2",
    "3",
    "4",
    "5",
    "-1",
    "16",
    "64",
    "4294967296",
    "1e30",
    "NaN",
    "dynamic",
    "ide",
    "sr",
    "folded",
    "batched",
    "split",
    "f32",
    "int8",
    "student-tiny",
    "student-edge",
    "\u{0}",
    "99999999999999999999",
];

const NAMES_IO: &[&str] = &["lr", "D", "D_prime", "sr", "x", ""];

impl OnnxTarget {
    fn mutate_proto(p: &mut ModelProto, rng: &mut Rng) {
        match rng.below(8) {
            0 | 1 => {
                // Set a kdsr.* key to an odd value.
                let key = META_KEYS[rng.below(META_KEYS.len())].to_owned();
                let value = META_VALUES[rng.below(META_VALUES.len())].to_owned();
                match p.metadata_props.iter_mut().find(|e| e.key == key) {
                    Some(e) => e.value = value,
                    None => p.metadata_props.push(StringStringEntryProto { key, value }),
                }
            }
            2 => {
                if !p.metadata_props.is_empty() {
                    let i = rng.below(p.metadata_props.len());
                    if rng.one_in(2) {
                        p.metadata_props.remove(i);
                    } else {
                        let e = p.metadata_props[i].clone();
                        p.metadata_props.push(e);
                    }
                }
            }
            3 => {
                // Rename an input or output.
                if let Some(g) = p.graph.as_mut() {
                    let list = if rng.one_in(2) {
                        &mut g.input
                    } else {
                        &mut g.output
                    };
                    if !list.is_empty() {
                        let i = rng.below(list.len());
                        list[i].name = NAMES_IO[rng.below(NAMES_IO.len())].to_owned();
                    }
                }
            }
            4 => {
                // Change a dimension of an input or output.
                use tract_onnx::pb::tensor_shape_proto::dimension::Value;
                use tract_onnx::pb::type_proto;
                if let Some(g) = p.graph.as_mut() {
                    let list = if rng.one_in(2) {
                        &mut g.input
                    } else {
                        &mut g.output
                    };
                    if list.is_empty() {
                        return;
                    }
                    let i = rng.below(list.len());
                    if let Some(type_proto::Value::TensorType(t)) =
                        list[i].r#type.as_mut().and_then(|t| t.value.as_mut())
                        && let Some(shape) = t.shape.as_mut()
                    {
                        if shape.dim.is_empty() || rng.one_in(6) {
                            shape.dim.push(Default::default());
                            return;
                        }
                        let d = rng.below(shape.dim.len());
                        let dims = [-1i64, 0, 1, 2, 3, 7, 16, 64, i64::MAX];
                        shape.dim[d].value = match rng.below(4) {
                            0 => Some(Value::DimParam(
                                ["h", "w", "N", "", "h*2"][rng.below(5)].to_owned(),
                            )),
                            1 => None,
                            _ => Some(Value::DimValue(dims[rng.below(dims.len())])),
                        };
                    }
                }
            }
            5 => {
                // Drop or duplicate a node.
                if let Some(g) = p.graph.as_mut()
                    && !g.node.is_empty()
                {
                    let i = rng.below(g.node.len());
                    if rng.one_in(2) {
                        g.node.remove(i);
                    } else {
                        let n = g.node[i].clone();
                        g.node.insert(rng.below(g.node.len()), n);
                    }
                }
            }
            6 => {
                // Change an integer attribute or an op type.
                if let Some(g) = p.graph.as_mut()
                    && !g.node.is_empty()
                {
                    let i = rng.below(g.node.len());
                    let n = &mut g.node[i];
                    if !n.attribute.is_empty() && rng.one_in(2) {
                        let a = rng.below(n.attribute.len());
                        let vals = [-1i64, 0, 1, 2, 3, 4, 1 << 20, i64::MIN, i64::MAX];
                        let v = vals[rng.below(vals.len())];
                        let attr = &mut n.attribute[a];
                        attr.i = v;
                        if !attr.ints.is_empty() {
                            let k = rng.below(attr.ints.len());
                            attr.ints[k] = v;
                        }
                    } else {
                        let ops = [
                            "Conv",
                            "Relu",
                            "Add",
                            "Mul",
                            "Reshape",
                            "Concat",
                            "Pad",
                            "DepthToSpace",
                            "Identity",
                            "Sigmoid",
                            "LeakyRelu",
                            "Gemm",
                        ];
                        n.op_type = ops[rng.below(ops.len())].to_owned();
                    }
                }
            }
            _ => {
                // Change the dims of an initializer.
                if let Some(g) = p.graph.as_mut()
                    && !g.initializer.is_empty()
                {
                    let i = rng.below(g.initializer.len());
                    let t = &mut g.initializer[i];
                    if t.dims.is_empty() {
                        t.dims.push(1);
                    } else {
                        let d = rng.below(t.dims.len());
                        t.dims[d] = [0i64, 1, 2, -1, 3, 1 << 40][rng.below(6)];
                    }
                }
            }
        }
    }
}

impl Target for OnnxTarget {
    fn name(&self) -> &'static str {
        "onnx"
    }

    fn run(&self, data: &[u8]) {
        let _ = check_graph_bytes(data, Path::new("fuzz-input.onnx"));
    }

    fn dictionary(&self) -> &[&[u8]] {
        &[
            b"kdsr.format",
            b"kdsr.graph",
            b"kdsr.scale",
            b"kdsr.n_feats",
            b"kdsr.weights_hash",
            b"D_prime",
            b"Conv",
            b"DepthToSpace",
            b"Reshape",
        ]
    }

    fn mutate(&self, data: &[u8], rng: &mut Rng) -> Option<Vec<u8>> {
        let mut p = ModelProto::decode(data).ok()?;
        for _ in 0..1 + rng.below(2) {
            Self::mutate_proto(&mut p, rng);
        }
        Some(p.encode_to_vec())
    }
}

/// `.idr`, `.bank` and safetensors checkpoints.
pub struct CkptTarget {
    tiny: KdsrConfig,
}

impl Target for CkptTarget {
    fn name(&self) -> &'static str {
        "ckpt"
    }

    fn run(&self, data: &[u8]) {
        if let Ok(idr) = Idr::from_bytes(data, "fuzz.idr") {
            let _ = idr.check_values();
            let _ = Idr::mean(&[idr.clone(), idr], "fuzz");
        }
        if let Ok(bank) = Bank::from_bytes(data, Path::new("fuzz.bank")) {
            let probe = bank
                .entries
                .first()
                .map(|e| e.d_prime.clone())
                .unwrap_or_default();
            let _ = bank.nearest(&probe, 3);
        }
        let _ = weights_from_bytes(&self.tiny, "fuzz.safetensors", data, false);
        let _ = weights_from_bytes(&self.tiny, "fuzz.safetensors", data, true);
        let _ = weights_from_bytes_unchecked(data, "fuzz.safetensors");
        if let Ok((_, header)) = safetensors::SafeTensors::read_metadata(data)
            && let Some(text) = header
                .metadata()
                .as_ref()
                .and_then(|m| m.get("kdsr.config"))
        {
            let _ = KdsrConfig::from_str_as(text, "json", "fuzz (kdsr.config)");
        }
    }

    fn dictionary(&self) -> &[&[u8]] {
        &[
            b"\"dtype\":\"F32\"",
            b"\"dtype\":\"F16\"",
            b"\"dtype\":\"I64\"",
            b"\"dtype\":\"BOOL\"",
            b"\"shape\":[",
            b"\"shape\":[]",
            b"\"data_offsets\":[",
            b"\"__metadata__\":{",
            b"\"format\":\"kdsr-idr-1\"",
            b"\"format\":\"kdsr-bank-1\"",
            b"\"weights_hash\":\"\"",
            b"\"D_prime\"",
            b"\"D\"",
            b"\"sigma\"",
            b"\"noise\"",
            b"18446744073709551615",
            b"4294967296",
            b"-1",
            b"1e999",
            b"null",
            b"{}",
            b"[]",
        ]
    }

    /// Mutates the JSON header (bytes 8..8+n) and rewrites the length prefix, so header-level
    /// edits reach the checks behind the length check.
    fn mutate(&self, data: &[u8], rng: &mut Rng) -> Option<Vec<u8>> {
        let n = u64::from_le_bytes(data.get(..8)?.try_into().ok()?) as usize;
        let header = data.get(8..8usize.checked_add(n)?)?;
        let mut h = header.to_vec();
        crate::engine::mutate_bytes(&mut h, rng, self.dictionary(), &[], 1 << 16);
        let mut out = Vec::with_capacity(data.len() + 64);
        out.extend_from_slice(&(h.len() as u64).to_le_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(&data[8 + n..]);
        Some(out)
    }
}
