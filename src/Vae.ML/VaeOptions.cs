using Microsoft.Extensions.Logging;
using Microsoft.ML;

namespace Vae.ML;

/// <summary>
/// Options of <see cref="VaeTrainer"/>. The defaults are the original report's configuration: an MLP with one hidden
/// layer of 400 units, a 2-D latent space, summed BCE + KL, Adam with learning rate 1e-3, 20 epochs of batches of 128.
/// </summary>
public sealed class VaeOptions
{
    /// <summary>
    /// Input column: a known-size vector of <see cref="float"/>, with values in [0, 1] for the Bernoulli likelihood and
    /// any finite values for the Gaussian one (<see cref="Likelihood"/>). Default "Features".
    /// </summary>
    public string FeatureColumnName { get; set; } = "Features";

    /// <summary>Output column with the latent mean μ, <c>Vector&lt;Single, LatentDimension&gt;</c>. Default "Latent".</summary>
    public string LatentColumnName { get; set; } = "Latent";

    /// <summary>Output column with the latent log-variance log σ², <c>Vector&lt;Single, LatentDimension&gt;</c>. Default "LatentLogVariance".</summary>
    public string LatentLogVarianceColumnName { get; set; } = "LatentLogVariance";

    /// <summary>
    /// Output column with the reconstruction decoder(μ), same size as the input: probabilities for the Bernoulli
    /// likelihood, the decoder's mean in the input's own (unstandardized) units for the Gaussian one. Default "Reconstruction".
    /// </summary>
    public string ReconstructionColumnName { get; set; } = "Reconstruction";

    /// <summary>
    /// Output column with the per-row loss at z = μ, a <see cref="float"/> anomaly score: BCE + β·KL (Bernoulli), or the
    /// Gaussian negative log-likelihood of the raw row in nats + β·KL (Gaussian). Default "Score".
    /// </summary>
    public string ScoreColumnName { get; set; } = "Score";

    /// <summary>Size of the latent space. Default 2 (as the report, so it can be plotted).</summary>
    public int LatentDimension { get; set; } = 2;

    /// <summary>
    /// The kind of network: <see cref="VaeArchitecture.Mlp"/> (fully connected, the report's) or
    /// <see cref="VaeArchitecture.Convolutional"/> (strided convolutions and transposed convolutions over images of
    /// <see cref="ImageShape"/>). Default <see cref="VaeArchitecture.Mlp"/>.
    /// </summary>
    public VaeArchitecture Architecture { get; set; } = VaeArchitecture.Mlp;

    /// <summary>
    /// Hidden layer widths of the encoder; the decoder mirrors them. For <see cref="VaeArchitecture.Convolutional"/> these
    /// are the dense layers between the flattened feature maps and the latent space (the Keras example uses [16]).
    /// Default [400].
    /// </summary>
    public int[] HiddenSizes { get; set; } = [400];

    /// <summary>
    /// Channels × height × width of the image in each row, e.g. [1, 28, 28] for MNIST; the feature column stays a flat
    /// vector of that many values (row-major, channel first, as PyTorch's C×H×W tensors). Required for
    /// <see cref="VaeArchitecture.Convolutional"/>, whose height and width must be divisible by 4; optional for
    /// <see cref="VaeArchitecture.Mlp"/>, where it is only checked and recorded with the model. Default null.
    /// </summary>
    public int[]? ImageShape { get; set; }

    /// <summary>Passes over the training data. Default 20.</summary>
    public int Epochs { get; set; } = 20;

    /// <summary>Rows per optimisation step. Default 128.</summary>
    public int BatchSize { get; set; } = 128;

    /// <summary>Adam's learning rate. Default 1e-3.</summary>
    public double LearningRate { get; set; } = 1e-3;

    /// <summary>Weight of the KL term (β-VAE); 1 is the plain VAE of the report. Default 1.</summary>
    public double Beta { get; set; } = 1.0;

    /// <summary>
    /// KL warm-up: the KL term's weight rises linearly from 0 to <see cref="Beta"/> over this many epochs, as
    /// β_epoch = β · min(1, (epoch − 1) / KlWarmupEpochs); so epoch 1 trains on reconstruction alone and epoch
    /// KlWarmupEpochs + 1 onwards on the full β. Each epoch's weight is <see cref="VaeEpochMetrics.KlWeight"/>; validation
    /// losses and the trained model's Score use the final β. Default 0: no warm-up.
    /// </summary>
    public int KlWarmupEpochs { get; set; }

    /// <summary>
    /// Early stopping: training ends once this many epochs in a row have not lowered the validation loss at z = μ
    /// (<see cref="VaeEpochMetrics.ValidationLossAtMean"/>, deterministic and the Score's definition), and the model keeps
    /// the weights of the epoch with the lowest one. Needs <see cref="ValidationData"/>. The history marks that epoch
    /// (<see cref="VaeEpochMetrics.IsBestEpoch"/>) and why training stopped (<see cref="VaeEpochMetrics.StopReason"/>).
    /// Default null: train all <see cref="Epochs"/> and keep the last weights.
    /// </summary>
    public int? EarlyStoppingPatience { get; set; }

    /// <summary>
    /// What the decoder models. <see cref="VaeLikelihood.Bernoulli"/> (the report's summed BCE) needs values in [0, 1];
    /// <see cref="VaeLikelihood.Gaussian"/> takes any finite real values, with a learned variance per feature.
    /// Default <see cref="VaeLikelihood.Bernoulli"/>.
    /// </summary>
    public VaeLikelihood Likelihood { get; set; } = VaeLikelihood.Bernoulli;

    /// <summary>
    /// With <see cref="VaeLikelihood.Gaussian"/>: standardize each feature with the mean and standard deviation of the
    /// training data (saved with the model, applied in <c>Transform</c>), so that raw tabular columns need no normalizer.
    /// A constant feature (standard deviation 0) is only centred. Turn it off for data that is already scaled. Ignored
    /// for <see cref="VaeLikelihood.Bernoulli"/>. Default true.
    /// </summary>
    public bool StandardizeFeatures { get; set; } = true;

    /// <summary>
    /// Seed of the weight initialisation, shuffling and sampling. When null it derives from the <see cref="MLContext"/>'s
    /// seed, as ML.NET's own trainers do (and is random when that has none).
    /// </summary>
    public int? Seed { get; set; }

    /// <summary>
    /// "auto", "cpu", "cuda" or "cuda:N". "auto" follows the <see cref="MLContext"/>: with
    /// <see cref="MLContext.GpuDeviceId"/> set, that CUDA device, and when it is absent the CPU if
    /// <see cref="MLContext.FallbackToCpu"/> is true, else an <see cref="InvalidOperationException"/>; without
    /// GpuDeviceId, CUDA device 0 when TorchSharp reports CUDA available, else the CPU. The choice is logged.
    /// Default "auto".
    /// </summary>
    public string Device { get; set; } = "auto";

    /// <summary>Optional data scored after every epoch (reported as <see cref="VaeEpochMetrics.ValidationLoss"/>).</summary>
    public IDataView? ValidationData { get; set; }

    /// <summary>
    /// Training data up to this many bytes (rows × size × 4) is read once into one tensor; larger data is streamed from
    /// the <see cref="IDataView"/> batch by batch every epoch. Default 1 GiB.
    /// </summary>
    public long MaxInMemoryBytes { get; set; } = 1L << 30;

    /// <summary>Optional logger; receives one line per epoch (the <see cref="MLContext.Log"/> event receives them too).</summary>
    public ILogger? Logger { get; set; }

    /// <summary>Optional progress sink, reported once per epoch.</summary>
    public IProgress<VaeEpochMetrics>? Progress { get; set; }

    /// <summary>
    /// Optional progress sink within an epoch, reported after a training batch at most once per
    /// <see cref="BatchProgressInterval"/> and always after an epoch's last batch. Default null.
    /// </summary>
    public IProgress<VaeBatchProgress>? BatchProgress { get; set; }

    /// <summary>
    /// The least time between two <see cref="BatchProgress"/> reports within an epoch; <see cref="TimeSpan.Zero"/>
    /// reports every batch. Default 200 ms.
    /// </summary>
    public TimeSpan BatchProgressInterval { get; set; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Stops training at the next batch boundary with an <see cref="OperationCanceledException"/>.</summary>
    public CancellationToken CancellationToken { get; set; }

    /// <summary>
    /// Folder for training checkpoints (weights, Adam's state, the epoch, the random generators' state), written
    /// atomically as <c>checkpoint-epoch-NNNN.safetensors</c> every <see cref="CheckpointEveryEpochs"/> epochs and after
    /// the last one. Created when missing; a fresh run (no <see cref="ResumeFrom"/>) refuses a folder that already holds
    /// checkpoints, so that checkpoints of two runs never mix. Default null: no checkpoints.
    /// </summary>
    public string? CheckpointDirectory { get; set; }

    /// <summary>Epochs between checkpoints when <see cref="CheckpointDirectory"/> is set; the last epoch is always saved. Default 1.</summary>
    public int CheckpointEveryEpochs { get; set; } = 1;

    /// <summary>
    /// How many checkpoints to keep in <see cref="CheckpointDirectory"/>: after each save, older ones beyond the newest
    /// this many are deleted. Null keeps them all. Default 3.
    /// </summary>
    public int? KeepLastCheckpoints { get; set; } = 3;

    /// <summary>
    /// A checkpoint file to continue from, or a folder of checkpoints to continue from the newest (highest epoch). The
    /// options must describe the same run (architecture, batch size, learning rate, β, seed, device kind, training and
    /// validation data sizes); <see cref="Epochs"/> may be larger than the checkpoint's epoch to train further. With the
    /// same data, a resumed run ends with bit-identical weights and history (except the wall-clock
    /// <see cref="VaeEpochMetrics.Seconds"/>) to a run that was never interrupted. When <see cref="Seed"/> is null the
    /// checkpoint's seed is used. Default null: train from scratch.
    /// </summary>
    public string? ResumeFrom { get; set; }

    internal VaeOptions Clone()
    {
        var copy = (VaeOptions)MemberwiseClone();
        copy.HiddenSizes = (int[])HiddenSizes.Clone();
        copy.ImageShape = (int[]?)ImageShape?.Clone();
        return copy;
    }
}
