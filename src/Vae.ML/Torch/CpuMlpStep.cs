using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Vae.ML.Torch;

/// <summary>
/// One training step of an MLP VAE on the CPU without autograd: the forward pass, the loss and the gradients
/// derived by hand, written straight into <see cref="FlatAdam"/>'s flat gradient buffer. The GEMMs stay in libtorch
/// (into preallocated matrices); the elementwise work and the sums run in managed code over the same memory. That is
/// about 20 libtorch calls per step instead of autograd's graph and ~40 calls, each with its dispatch.
/// </summary>
/// <remarks>
/// It computes what <see cref="VaeNetwork.forward(Tensor, Generator?)"/>, <see cref="VaeLoss.Batch"/> and
/// <c>backward()</c> compute, within float rounding (sums in another order), not bit for bit; it is itself
/// deterministic. ε is drawn from the run's generator exactly where the autograd path draws it (one normal draw of
/// rows × latent per step), so a seed still gives the PyTorch script's random stream. Convolutional networks and CUDA
/// keep the autograd path (<see cref="TryCreate"/> returns null). The managed passes run on the cores libtorch's GEMMs
/// use, in <see cref="StepPartition"/>'s fixed ranges, with the same bits as on one thread.
/// </remarks>
internal sealed class CpuMlpStep : IDisposable
{
    private readonly CpuDense[] _encoder;
    private readonly CpuDense _mu;
    private readonly CpuDense _logVar;
    private readonly CpuDense[] _decoder;
    private readonly CpuDense _output;
    private readonly int _latent;
    private readonly StepPartition _partition;
    private readonly float[] _scratch;
    private readonly float[] _precision;
    private readonly float[] _columnSums;

    // The Gaussian decoder's learned log σ² (values and gradient, views into the flat buffers); null for Bernoulli.
    private readonly Parameter? _logVariance;
    private readonly Tensor? _logVarianceGradient;

    // Read per step for the standardization's Σ log std: a resumed run puts the checkpoint's standardization back.
    private readonly VaeModel _model;

    // At most two batch sizes per run: the full batch and the epoch's last one.
    private readonly Dictionary<int, Workspace> _workspaces = [];

    private CpuMlpStep(VaeModel model, StepPartition partition)
    {
        var network = model.Network;
        var layers = network.Spec.Layers;
        var parameters = network.named_parameters().ToDictionary(p => p.name, p => p.parameter, StringComparer.Ordinal);
        _partition = partition;
        _encoder = layers.EncoderDense.Select(l => new CpuDense(l, parameters, partition)).ToArray();
        _mu = new CpuDense(layers.Mu, parameters, partition);
        _logVar = new CpuDense(layers.LogVariance, parameters, partition);
        _decoder = layers.DecoderDense.Select(l => new CpuDense(l, parameters, partition)).ToArray();
        _output = new CpuDense(layers.Output, parameters, partition);
        _latent = network.Spec.LatentDimension;
        _scratch = new float[partition.MaxParts * network.Spec.InputSize];
        _precision = new float[network.Spec.InputSize];
        _columnSums = new float[network.Spec.InputSize];
        _logVariance = network.DecoderLogVariance;
        _logVarianceGradient = _logVariance?.grad?.DetachFromDisposeScope();
        _model = model;
    }

    /// <summary>
    /// The step for <paramref name="model"/>'s network, or null where the autograd path trains it (not the CPU, not an
    /// MLP). Create it after <see cref="FlatAdam"/>: it works on the optimizer's flat buffers. Its managed passes are
    /// cut by <paramref name="partition"/> (default: one thread); the results are the same bits either way.
    /// </summary>
    public static CpuMlpStep? TryCreate(VaeModel model, StepPartition? partition = null)
        => model.Device.type == DeviceType.CPU && model.Architecture.Kind == VaeArchitecture.Mlp ? new CpuMlpStep(model, partition ?? StepPartition.Serial) : null;

    /// <summary>
    /// The forward pass on <paramref name="x"/> (rows × features, contiguous), ε drawn from <paramref name="generator"/>,
    /// and every parameter's gradient of the batch's loss reconstruction + <paramref name="beta"/>·KL written into its
    /// gradient buffer (replacing what was there). Returns the batch's summed loss, reconstruction term and KL.
    /// </summary>
    public (double Loss, double Reconstruction, double Kl) Run(Tensor x, Generator generator, double beta)
    {
        var rows = checked((int)x.shape[0]);
        var w = WorkspaceFor(rows);
        var xRows = new StepRows(x);

        // Encoder: dense layers with ReLU, then the two heads.
        var h = x;
        for (var i = 0; i < _encoder.Length; i++)
        {
            _encoder[i].Forward(h, w.Encoder[i], relu: true);
            h = w.Encoder[i].Tensor;
        }

        _mu.Forward(h, w.Mu, relu: false);
        _logVar.Forward(h, w.LogVar, relu: false);

        // ε ~ N(0, I) from the run's generator, where the autograd path's randn draws it; then z = μ + ε·σ.
        StepMemory.ReleaseAlias(w.Epsilon.Tensor, w.Epsilon.Tensor.normal_(0, 1, generator));

        GaussianLatent.Sample(w.Mu.Values, w.LogVar.Values, w.Epsilon.Values, w.Z.Values);

        // Decoder: dense layers with ReLU, then the logits (Bernoulli) or the standardized means (Gaussian).
        var d = w.Z.Tensor;
        for (var j = 0; j < _decoder.Length; j++)
        {
            _decoder[j].Forward(d, w.Decoder[j], relu: true);
            d = w.Decoder[j].Tensor;
        }

        _output.Forward(d, w.Decoded, relu: false);

        var reconstruction = _logVariance is null
            ? BernoulliTerm.LossAndGradient(w.Decoded, xRows, w.DecodedGradient, _scratch, w.RowSums, _partition)
            : GaussianTerm.LossAndGradient(w.Decoded, xRows, w.DecodedGradient, StepMemory.Values(_logVariance), StepMemory.Span(_logVarianceGradient!),
                _model.Standardization?.LogStdSum ?? 0, _precision, w.Squares!, w.RowSums, _columnSums, _partition);
        var kl = GaussianLatent.Kl(w.Mu.Values, w.LogVar.Values);

        // Backward through the decoder, output to z; each hidden layer's gradient is masked by its ReLU in the pass
        // that sums its bias gradient.
        var gradient = w.DecodedGradient;
        StepMatrix? reluOutput = null;
        var layer = _output;
        for (var j = _decoder.Length - 1; j >= 0; j--)
        {
            layer.Backward(gradient, w.Decoder[j].Tensor, w.DecoderGradient[j], reluOutput: reluOutput);
            (gradient, reluOutput, layer) = (w.DecoderGradient[j], w.Decoder[j], _decoder[j]);
        }

        layer.Backward(gradient, w.Z.Tensor, w.ZGradient, reluOutput: reluOutput);
        GaussianLatent.Backward(w.ZGradient.Values, w.Mu.Values, w.LogVar.Values, w.Epsilon.Values, beta, w.MuGradient.Values, w.LogVarGradient.Values);

        // Both heads read the last encoder layer (an MLP has at least one hidden layer): its gradient is the sum of theirs.
        var last = _encoder.Length - 1;
        var headInput = w.Encoder[last].Tensor;
        var headGradient = w.EncoderGradient[last];
        _mu.Backward(w.MuGradient, headInput, headGradient);
        _logVar.Backward(w.LogVarGradient, headInput, headGradient, accumulate: true);
        for (var i = last; i >= 0; i--)
        {
            _encoder[i].Backward(w.EncoderGradient[i], i > 0 ? w.Encoder[i - 1].Tensor : x, i > 0 ? w.EncoderGradient[i - 1] : null, reluOutput: w.Encoder[i]);
        }

        return (reconstruction + (beta * kl), reconstruction, kl);
    }

    private Workspace WorkspaceFor(int rows)
    {
        if (!_workspaces.TryGetValue(rows, out var workspace))
        {
            workspace = new Workspace(rows, _encoder, _latent, _decoder, _output.Outputs, gaussian: _logVariance is not null);
            _workspaces.Add(rows, workspace);
        }

        return workspace;
    }

    public void Dispose()
    {
        _logVarianceGradient?.Dispose();
        foreach (var workspace in _workspaces.Values)
        {
            workspace.Dispose();
        }

        foreach (var layer in _encoder.Append(_mu).Append(_logVar).Concat(_decoder).Append(_output))
        {
            layer.Dispose();
        }
    }

    /// <summary>Every activation of one batch size and its gradient.</summary>
    private sealed class Workspace : IDisposable
    {
        public Workspace(int rows, CpuDense[] encoder, int latent, CpuDense[] decoder, int features, bool gaussian)
        {
            Encoder = encoder.Select(l => new StepMatrix(rows, l.Outputs)).ToArray();
            EncoderGradient = encoder.Select(l => new StepMatrix(rows, l.Outputs)).ToArray();
            Mu = new StepMatrix(rows, latent);
            LogVar = new StepMatrix(rows, latent);
            Epsilon = new StepMatrix(rows, latent);
            Z = new StepMatrix(rows, latent);
            MuGradient = new StepMatrix(rows, latent);
            LogVarGradient = new StepMatrix(rows, latent);
            ZGradient = new StepMatrix(rows, latent);
            Decoder = decoder.Select(l => new StepMatrix(rows, l.Outputs)).ToArray();
            DecoderGradient = decoder.Select(l => new StepMatrix(rows, l.Outputs)).ToArray();
            Decoded = new StepMatrix(rows, features);
            DecodedGradient = new StepMatrix(rows, features);
            Squares = gaussian ? new StepMatrix(rows, features) : null;
            RowSums = new float[rows];
        }

        public StepMatrix[] Encoder { get; }

        public StepMatrix[] EncoderGradient { get; }

        public StepMatrix Mu { get; }

        public StepMatrix LogVar { get; }

        public StepMatrix Epsilon { get; }

        public StepMatrix Z { get; }

        public StepMatrix MuGradient { get; }

        public StepMatrix LogVarGradient { get; }

        public StepMatrix ZGradient { get; }

        public StepMatrix[] Decoder { get; }

        public StepMatrix[] DecoderGradient { get; }

        public StepMatrix Decoded { get; }

        public StepMatrix DecodedGradient { get; }

        /// <summary>The Gaussian term's (x − μ)² e^−lv per element; null for Bernoulli.</summary>
        public StepMatrix? Squares { get; }

        /// <summary>The reconstruction term's sum per row, added up in row order after the parallel pass.</summary>
        public float[] RowSums { get; }

        public void Dispose()
        {
            foreach (var matrix in Encoder.Concat(EncoderGradient).Concat(Decoder).Concat(DecoderGradient)
                .Concat([Mu, LogVar, Epsilon, Z, MuGradient, LogVarGradient, ZGradient, Decoded, DecodedGradient]))
            {
                matrix.Dispose();
            }

            Squares?.Dispose();
        }
    }
}
