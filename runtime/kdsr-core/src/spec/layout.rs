//! The official `state_dict` layout: every weight tensor of a [`KdsrConfig`] with its key and
//! shape, in the order the official `BlindSR` registers them (docs/reference/kdsr-architecture.md §5).

use super::{BlockConv, DDC_KERNEL, KdsrConfig};

/// Which part of the network a tensor belongs to (for per-module parameter counts).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Module {
    /// `G.sub_mean`, `G.add_mean`: frozen 1×1 convs.
    MeanShift,
    /// `G.head.0`.
    Head,
    /// One of `G.body.0.body.{n}` (IDR-DCRB `n`); the flag is true for its IDR-DDC kernel MLP.
    Block {
        /// Block index.
        index: usize,
        /// True for `da_conv1.kernel.*`.
        ddc_mlp: bool,
    },
    /// `G.body.1`.
    BodyConv,
    /// `G.tail.0` (conv + PixelShuffle stages).
    Upsampler,
    /// `G.tail.1`.
    FinalConv,
    /// `{P}.E.*`: the IDE's convolutional trunk.
    IdeTrunk,
    /// `{P}.mlp.*`: produces `D'`.
    IdeMlp,
    /// `{P}.compress.*`: produces `D`.
    IdeCompress,
}

impl Module {
    /// True for the SR network `G`, false for the IDE.
    pub fn in_sr_network(self) -> bool {
        !matches!(
            self,
            Module::IdeTrunk | Module::IdeMlp | Module::IdeCompress
        )
    }
}

/// One tensor of the official state dict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorSpec {
    /// Official key, e.g. `G.body.0.body.3.conv1.weight`.
    pub key: String,
    /// Shape: conv weights `[out, in/groups, kh, kw]`, linear weights `[out, in]`, biases `[n]`.
    pub shape: Vec<usize>,
    /// The module it belongs to.
    pub module: Module,
    /// False for the frozen MeanShift tensors.
    pub trainable: bool,
}

impl TensorSpec {
    /// Number of values.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

struct Builder(Vec<TensorSpec>);

impl Builder {
    fn push(&mut self, key: String, shape: Vec<usize>, module: Module) {
        let trainable = module != Module::MeanShift;
        self.0.push(TensorSpec {
            key,
            shape,
            module,
            trainable,
        });
    }
    fn conv(&mut self, key: &str, cout: usize, cin: usize, k: usize, module: Module) {
        self.push(format!("{key}.weight"), vec![cout, cin, k, k], module);
        self.push(format!("{key}.bias"), vec![cout], module);
    }
    fn linear(&mut self, key: &str, out: usize, inp: usize, bias: bool, module: Module) {
        self.push(format!("{key}.weight"), vec![out, inp], module);
        if bias {
            self.push(format!("{key}.bias"), vec![out], module);
        }
    }
}

/// Upsampler stages for a scale: `(stage index in tail.0, conv output channels factor)`.
/// ×4 is two ×2 stages (`tail.0.0`, `tail.0.2`); ×2 one stage; ×3 one ×3 stage.
pub fn upsampler_stages(scale: u32) -> Vec<(usize, usize)> {
    match scale {
        4 => vec![(0, 4), (2, 4)],
        3 => vec![(0, 9)],
        _ => vec![(0, 4)],
    }
}

/// The PixelShuffle factor of each upsampler stage.
pub fn upsampler_factors(scale: u32) -> Vec<usize> {
    match scale {
        4 => vec![2, 2],
        3 => vec![3],
        _ => vec![2],
    }
}

/// State-dict index of the IDE trunk layers after the resblocks: the three convs
/// `C→2C`, `2C→2C`, `2C→4C` sit at `E.{R+2}`, `E.{R+4}`, `E.{R+6}`.
pub fn ide_tail_indices(n_resblocks: usize) -> [usize; 3] {
    [n_resblocks + 2, n_resblocks + 4, n_resblocks + 6]
}

impl KdsrConfig {
    /// Every tensor of the network, official keys and shapes, in `state_dict` order.
    pub fn tensors(&self) -> Vec<TensorSpec> {
        let c = self.n_feats;
        let mut b = Builder(Vec::new());
        b.push(
            "G.sub_mean.weight".into(),
            vec![3, 3, 1, 1],
            Module::MeanShift,
        );
        b.push("G.sub_mean.bias".into(), vec![3], Module::MeanShift);
        b.push(
            "G.add_mean.weight".into(),
            vec![3, 3, 1, 1],
            Module::MeanShift,
        );
        b.push("G.add_mean.bias".into(), vec![3], Module::MeanShift);
        b.conv("G.head.0", c, 3, 3, Module::Head);
        let kk = DDC_KERNEL * DDC_KERNEL;
        for n in 0..self.n_blocks {
            let p = format!("G.body.0.body.{n}");
            let mlp = Module::Block {
                index: n,
                ddc_mlp: true,
            };
            let conv = Module::Block {
                index: n,
                ddc_mlp: false,
            };
            match self.block_conv {
                BlockConv::IdrDdc => {
                    b.linear(&format!("{p}.da_conv1.kernel.0"), c, c, false, mlp);
                    b.linear(&format!("{p}.da_conv1.kernel.2"), kk * c, c, false, mlp);
                }
                BlockConv::Plain => b.conv(&format!("{p}.da_conv1.conv"), c, c, 3, conv),
            }
            b.conv(&format!("{p}.conv1"), c, c, 3, conv);
        }
        b.conv("G.body.1", c, c, 3, Module::BodyConv);
        for (idx, factor) in upsampler_stages(self.scale) {
            b.conv(
                &format!("G.tail.0.{idx}"),
                factor * c,
                c,
                3,
                Module::Upsampler,
            );
        }
        b.conv("G.tail.1", 3, c, 3, Module::FinalConv);

        let p = self.role.ide_prefix();
        b.conv(
            &format!("{p}.E.0"),
            c,
            self.ide_in_channels(),
            3,
            Module::IdeTrunk,
        );
        for r in 0..self.n_resblocks {
            b.conv(
                &format!("{p}.E.{}.body.0", r + 2),
                c,
                c,
                3,
                Module::IdeTrunk,
            );
            b.conv(
                &format!("{p}.E.{}.body.2", r + 2),
                c,
                c,
                3,
                Module::IdeTrunk,
            );
        }
        let [i1, i2, i3] = ide_tail_indices(self.n_resblocks);
        b.conv(&format!("{p}.E.{i1}"), 2 * c, c, 3, Module::IdeTrunk);
        b.conv(&format!("{p}.E.{i2}"), 2 * c, 2 * c, 3, Module::IdeTrunk);
        b.conv(&format!("{p}.E.{i3}"), 4 * c, 2 * c, 3, Module::IdeTrunk);
        b.linear(&format!("{p}.mlp.0"), 4 * c, 4 * c, true, Module::IdeMlp);
        b.linear(&format!("{p}.mlp.2"), 4 * c, 4 * c, true, Module::IdeMlp);
        b.linear(
            &format!("{p}.compress.0"),
            c,
            4 * c,
            true,
            Module::IdeCompress,
        );
        b.0
    }

    /// Total parameters, the frozen MeanShifts included (as the official counts are).
    pub fn param_count(&self) -> usize {
        self.tensors().iter().map(TensorSpec::numel).sum()
    }

    /// Trainable parameters (total minus the 24 MeanShift values).
    pub fn trainable_param_count(&self) -> usize {
        self.tensors()
            .iter()
            .filter(|t| t.trainable)
            .map(TensorSpec::numel)
            .sum()
    }

    /// Parameters of the tensors whose module satisfies `pred`.
    pub fn param_count_where(&self, pred: impl Fn(Module) -> bool) -> usize {
        self.tensors()
            .iter()
            .filter(|t| pred(t.module))
            .map(TensorSpec::numel)
            .sum()
    }
}
