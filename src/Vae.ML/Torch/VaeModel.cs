using Microsoft.ML;
using TorchSharp;
using Vae.ML.Data;
using static TorchSharp.torch;

namespace Vae.ML.Torch;

/// <summary>The <see cref="MLContext"/>'s GPU settings (<see cref="MLContext.GpuDeviceId"/>, <see cref="MLContext.FallbackToCpu"/>); default: none.</summary>
internal readonly record struct GpuRequest(int? GpuDeviceId, bool FallbackToCpu);

/// <summary>
/// A trained (or being trained) VAE network on a device, with batched, thread-safe inference on plain float arrays.
/// This is the only type through which the rest of Vae.ML touches TorchSharp tensors.
/// </summary>
internal sealed class VaeModel : IDisposable
{
    /// <summary>
    /// Module creation draws from torch's global generator: serialise it so a seed means one model, and restore the
    /// generator afterwards so that creating or loading a VAE never changes the application's random stream.
    /// </summary>
    private static readonly object GlobalRandomLock = new();

    private readonly object _forwardLock = new();
    private Tensor? _randomStateAfterInit;
    private bool _disposed;
    private long _encoderPasses;
    private long _decoderPasses;
    private long _rowsSinceHeapTrim;
    private SingleRowPath? _singleRow;
    private InputBatch? _spareInputBatch;

    /// <summary>Rows scored in batches between two <see cref="Runtime.NativeHeap.ReleaseFreePages"/> (about 1 ms each).</summary>
    private const int RowsBetweenHeapTrims = 65_536;

    private VaeModel(VaeNetwork network, Device device, VaeNetworkSpec architecture)
    {
        Network = network;
        Device = device;
        Architecture = architecture;
    }

    public VaeNetwork Network { get; }

    public Device Device { get; }

    public VaeNetworkSpec Architecture { get; }

    public int InputSize => Architecture.InputSize;

    public int LatentDimension => Architecture.LatentDimension;

    /// <summary>The decoder's distribution (also for the ONNX exporter: Gaussian outputs are means, not logits).</summary>
    public VaeLikelihood Likelihood => Architecture.Likelihood;

    /// <summary>
    /// Gaussian only (null for Bernoulli): how features are standardized before the network and mapped back after it.
    /// The trainer sets it from the training data before the first epoch; loading sets it from the file.
    /// </summary>
    public FeatureStandardization? Standardization { get; set; }

    /// <summary>The Gaussian terms of the loss, or null for the Bernoulli likelihood.</summary>
    public GaussianTerms? Gaussian => Network.DecoderLogVariance is { } logVariance ? new GaussianTerms(logVariance, Standardization!.LogStdSum) : null;

    /// <summary>How many times <see cref="Infer"/> ran the encoder (once per batch of rows); tests check the batching.</summary>
    internal long EncoderPasses => Interlocked.Read(ref _encoderPasses);

    /// <summary>How many times <see cref="Infer"/> ran the decoder; it must run only when reconstructions or scores are wanted.</summary>
    internal long DecoderPasses => Interlocked.Read(ref _decoderPasses);

    /// <summary>Creates a freshly initialised network; the same seed gives the same weights.</summary>
    /// <remarks>Nothing native outlives a failure: when the device move throws, the network and the saved random state are freed.</remarks>
    public static VaeModel Create(VaeNetworkSpec architecture, long seed, string device, GpuRequest gpu = default)
    {
        Runtime.TorchRuntime.EnsureInitialized();
        var (resolved, why) = ResolveDevice(device, gpu);
        VaeNetwork? network = null;
        Tensor? stateAfterInit = null;
        try
        {
            lock (GlobalRandomLock)
            {
                // Seed, build, and put the application's own global generator state back afterwards.
                using var applicationState = torch.random.get_rng_state();
                try
                {
                    // manual_seed returns a new handle on the global generator; only the seeding matters here.
                    torch.random.manual_seed(seed).Dispose();
                    network = new VaeNetwork(architecture);
                    stateAfterInit = torch.random.get_rng_state();
                }
                finally
                {
                    torch.random.set_rng_state(applicationState);
                }
            }

            network.to(resolved);
            var standardization = architecture.Likelihood == VaeLikelihood.Gaussian ? FeatureStandardization.Identity(architecture.InputSize) : null;
            return new VaeModel(network, resolved, architecture) { _randomStateAfterInit = stateAfterInit, Standardization = standardization, DeviceChoice = why };
        }
        catch
        {
            stateAfterInit?.Dispose();
            network?.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A CPU generator that continues exactly where the seeded initialisation left torch's global generator, as the
    /// PyTorch script's later <c>randperm</c>/<c>randn_like</c> calls do, but private to this training run.
    /// </summary>
    public Generator CreateGeneratorAfterInit(long seed)
    {
        var generator = new Generator((ulong)seed, torch.CPU);
        if (_randomStateAfterInit is not null)
        {
            generator.set_state(_randomStateAfterInit);
        }

        return generator;
    }

    /// <summary>Checks the spelling of a device name without touching TorchSharp.</summary>
    public static void CheckDeviceName(string? device)
    {
        var text = device?.Trim().ToLowerInvariant();
        var valid = text is "auto" or "cpu" or "cuda"
            || (text is not null && text.StartsWith("cuda:", StringComparison.Ordinal)
                && int.TryParse(text.AsSpan(5), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out _));
        if (!valid)
        {
            throw new ArgumentOutOfRangeException(nameof(VaeOptions.Device), device, $"Device must be \"auto\", \"cpu\", \"cuda\" or \"cuda:N\", not '{device}'.");
        }
    }

    /// <summary>Why <see cref="Device"/> was chosen, in words (for the log).</summary>
    public string DeviceChoice { get; private init; } = "";

    /// <summary>The device for <paramref name="device"/> under the context's GPU settings, and why; see <see cref="ChooseDevice"/>.</summary>
    public static (Device Device, string Why) ResolveDevice(string device, GpuRequest gpu = default)
    {
        CheckDeviceName(device);

        // "cpu" never asks TorchSharp about CUDA (which loads the CUDA backend when one is referenced).
        var cpuOnly = device.Trim().Equals("cpu", StringComparison.OrdinalIgnoreCase);
        var available = !cpuOnly && torch.cuda.is_available();
        var (type, index, why) = ChooseDevice(device, gpu, available, available ? torch.cuda.device_count() : 0);
        return (type == DeviceType.CPU ? torch.CPU : new Device(DeviceType.CUDA, index), why);
    }

    /// <summary>
    /// The device rule, as a pure function of the option, the <see cref="MLContext"/>'s GPU settings and what TorchSharp
    /// reports. "cpu": the CPU. "cuda"/"cuda:N": that GPU, or an exception when it is absent. "auto" with
    /// <see cref="MLContext.GpuDeviceId"/> set: that GPU; when it is absent the CPU if <see cref="MLContext.FallbackToCpu"/>,
    /// else an exception. "auto" without GpuDeviceId: GPU 0 when CUDA is available, else the CPU.
    /// </summary>
    internal static (DeviceType Type, int Index, string Why) ChooseDevice(string device, GpuRequest gpu, bool cudaAvailable, int cudaDeviceCount)
    {
        CheckDeviceName(device);
        var text = device.Trim().ToLowerInvariant();
        var present = cudaAvailable ? $"{cudaDeviceCount} CUDA device(s) are present" : "TorchSharp reports no CUDA device";
        if (text == "cpu")
        {
            return (DeviceType.CPU, 0, "Device = \"cpu\"");
        }

        if (text == "auto")
        {
            if (gpu.GpuDeviceId is not int id)
            {
                return cudaAvailable
                    ? (DeviceType.CUDA, 0, "Device = \"auto\" and CUDA is available (MLContext.GpuDeviceId is not set)")
                    : (DeviceType.CPU, 0, "Device = \"auto\" and TorchSharp reports no CUDA device");
            }

            if (id < 0)
            {
                throw new ArgumentOutOfRangeException(nameof(MLContext.GpuDeviceId), id, "MLContext.GpuDeviceId must be ≥ 0, or null.");
            }

            if (cudaAvailable && id < cudaDeviceCount)
            {
                return (DeviceType.CUDA, id, $"Device = \"auto\" and MLContext.GpuDeviceId = {id}");
            }

            if (gpu.FallbackToCpu)
            {
                return (DeviceType.CPU, 0, $"MLContext.GpuDeviceId = {id} asks for CUDA device {id}, but {present}; MLContext.FallbackToCpu is true");
            }

            throw new InvalidOperationException(
                $"MLContext.GpuDeviceId = {id} asks for CUDA device {id}, but {present}, and MLContext.FallbackToCpu is false. " +
                "Set MLContext.FallbackToCpu = true to train on the CPU instead, leave GpuDeviceId null, or reference the CUDA backend " +
                "(TorchSharp-cuda-linux or TorchSharp-cuda-windows) and check the NVIDIA driver.");
        }

        if (!cudaAvailable)
        {
            throw new InvalidOperationException(
                $"Device '{device}' was requested but TorchSharp reports no CUDA device. Reference the CUDA backend " +
                "(TorchSharp-cuda-linux or TorchSharp-cuda-windows) and check the NVIDIA driver, or use Device = \"cpu\" or \"auto\".");
        }

        var index = text == "cuda" ? 0 : int.Parse(text.AsSpan(5), System.Globalization.CultureInfo.InvariantCulture);
        if (index >= cudaDeviceCount)
        {
            throw new ArgumentOutOfRangeException(nameof(device), device, $"Only {cudaDeviceCount} CUDA device(s) are present.");
        }

        return (DeviceType.CUDA, index, $"Device = \"{text}\"");
    }

    /// <summary>Runs the encoder (and, when asked, the decoder and the per-row loss) on <paramref name="rows"/> rows.</summary>
    /// <remarks>
    /// Values never make this throw. A row with a NaN or infinite value goes through the network as zeros, so nothing
    /// non-finite enters it, and all its outputs are NaN (ML.NET's missing value); the other rows are computed exactly
    /// as without it. Finite values outside [0, 1] are used as they are (and reported for the Bernoulli likelihood only).
    /// A single row of an MLP is computed in managed code (<see cref="ManagedMlp"/>): for one row libtorch's fixed cost
    /// per call is most of the time; it agrees with the batched libtorch path within float rounding.
    /// </remarks>
    /// <param name="inputs">rows × InputSize values, row-major.</param>
    /// <param name="rows">Number of rows in <paramref name="inputs"/>.</param>
    /// <param name="mu">Receives rows × LatentDimension means, or empty to skip.</param>
    /// <param name="logVar">Receives rows × LatentDimension log-variances, or empty to skip.</param>
    /// <param name="reconstruction">Receives rows × InputSize decoder(μ) probabilities (Gaussian: means in raw units), or empty to skip.</param>
    /// <param name="score">Receives rows per-row losses (BCE or raw-unit Gaussian NLL) + β·KL at z = μ, or empty to skip.</param>
    /// <param name="beta">KL weight of the score.</param>
    /// <param name="rowValues">Receives, per row, where its values lie relative to [0, 1], or empty to skip.</param>
    public void Infer(ReadOnlySpan<float> inputs, int rows, Span<float> mu, Span<float> logVar, Span<float> reconstruction, Span<float> score, double beta, Span<RowValues> rowValues)
    {
        if (rows == 0)
        {
            return;
        }

        // Classifying is managed work: done outside the lock, so concurrent callers only queue for the network.
        var notFinite = FindNotFiniteRows(inputs, rows, InputSize, rowValues, unitRange: Likelihood == VaeLikelihood.Bernoulli);
        if (rows == 1 && SingleRowForward() is { } managed)
        {
            InferOneRow(managed, notFinite is null ? inputs : new float[InputSize], mu, logVar, reconstruction, score, beta);
        }
        else
        {
            var networkInputs = notFinite is null ? inputs : ZeroRows(inputs, rows, InputSize, notFinite);
            lock (_forwardLock)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                using var scope = torch.NewDisposeScope();
                using var x = ToDevice(networkInputs, rows, InputSize);
                Forward(x, mu, logVar, reconstruction, score, beta);
            }

            ReleaseFreedNativeMemory(rows);
        }

        FillNotFiniteRows(notFinite, mu, logVar, reconstruction, score);
    }

    /// <summary>
    /// <see cref="Infer"/> for the first <paramref name="rows"/> rows a cursor wrote into <paramref name="batch"/>, classified as
    /// they were written (<paramref name="rowValues"/>): the input tensor is reused from batch to batch (non-finite rows are
    /// zeroed in it), and the outputs are those of the span overload bit for bit.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)] // its loop runs per row (see VaeCursor)
    public void InferBatch(InputBatch batch, int rows, Span<float> mu, Span<float> logVar, Span<float> reconstruction, Span<float> score, double beta, ReadOnlySpan<RowValues> rowValues)
    {
        if (rows == 0)
        {
            return;
        }

        List<int>? notFinite = null;
        for (var row = 0; row < rows; row++)
        {
            if (rowValues[row] == RowValues.NotFinite)
            {
                (notFinite ??= []).Add(row);
                batch.Row(row).Clear();
            }
        }

        lock (_forwardLock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            using var scope = torch.NewDisposeScope();
            var x = batch.Tensor(rows);
            if (Device.type != DeviceType.CPU)
            {
                x = x.to(Device);
            }

            if (Standardization is { } standardization)
            {
                x = standardization.Standardize(x);
            }

            Forward(x, mu, logVar, reconstruction, score, beta);
        }

        FillNotFiniteRows(notFinite, mu, logVar, reconstruction, score);
        ReleaseFreedNativeMemory(rows);
    }

    /// <summary>
    /// A reusable input tensor of <paramref name="capacity"/> rows for <see cref="InferBatch"/>: the one the last cursor
    /// returned when there is one, else a new one. Each cursor used to allocate its own 3.2 MB (1,024 rows of 784), and
    /// the first batch of every cursor paid for faulting those pages in.
    /// </summary>
    public InputBatch RentInputBatch(int capacity)
    {
        var spare = Interlocked.Exchange(ref _spareInputBatch, null);
        if (spare is not null && spare.Capacity == capacity)
        {
            return spare;
        }

        spare?.Dispose();
        return new InputBatch(capacity, InputSize);
    }

    /// <summary>Takes back an input tensor from <see cref="RentInputBatch"/>; keeps one for the next cursor and frees any other.</summary>
    public void ReturnInputBatch(InputBatch batch)
    {
        lock (_forwardLock)
        {
            // After Dispose nothing would free a kept tensor.
            if (!_disposed && Interlocked.CompareExchange(ref _spareInputBatch, batch, null) is null)
            {
                return;
            }
        }

        batch.Dispose();
    }

    /// <summary>The network on rows <paramref name="x"/> (on the device, standardized); runs inside the forward lock and a dispose scope.</summary>
    private void Forward(Tensor x, Span<float> mu, Span<float> logVar, Span<float> reconstruction, Span<float> score, double beta)
    {
        using var noGrad = torch.no_grad();
        var (m, lv) = Network.Encode(x);
        Interlocked.Increment(ref _encoderPasses);
        CopyOut(m, mu);
        CopyOut(lv, logVar);
        if (!reconstruction.IsEmpty || !score.IsEmpty)
        {
            var logits = Network.DecodeLogits(m);
            Interlocked.Increment(ref _decoderPasses);
            if (!reconstruction.IsEmpty)
            {
                CopyOut(Output(logits), reconstruction);
            }

            if (!score.IsEmpty)
            {
                CopyOut(VaeLoss.PerRow(logits, x, m, lv, beta, Gaussian), score);
            }
        }
    }

    /// <summary>One row through the managed forward, counted like a libtorch pass.</summary>
    private void InferOneRow(ManagedMlp managed, ReadOnlySpan<float> input, Span<float> mu, Span<float> logVar, Span<float> reconstruction, Span<float> score, double beta)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        managed.Infer(input, mu, logVar, reconstruction, score, beta);
        Interlocked.Increment(ref _encoderPasses);
        if (!reconstruction.IsEmpty || !score.IsEmpty)
        {
            Interlocked.Increment(ref _decoderPasses);
        }
    }

    /// <summary>
    /// The managed single-row forward, built from the weights on first use; null for architectures without one
    /// (convolutional) and for networks not on the CPU. <see cref="SetParameters"/> discards it. Scoring starts after
    /// training, so the weights it copies are final.
    /// </summary>
    private ManagedMlp? SingleRowForward()
    {
        var built = Volatile.Read(ref _singleRow);
        if (built is not null)
        {
            return built.Forward;
        }

        ManagedMlp? forward = null;
        if (Architecture.Kind == VaeArchitecture.Mlp && Device.type == DeviceType.CPU)
        {
            lock (_forwardLock)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                forward = ManagedMlp.Create(Architecture, GetParameters(), Standardization);
            }
        }

        Volatile.Write(ref _singleRow, new SingleRowPath(forward));
        return forward;
    }

    /// <summary>Whether one row is scored by the managed forward (an MLP on the CPU) rather than by libtorch; for tests.</summary>
    internal bool ScoresSingleRowsManaged => SingleRowForward() is not null;

    /// <summary>The managed single-row forward once it has been looked for (its Forward is null when there is none).</summary>
    private sealed record SingleRowPath(ManagedMlp? Forward);

    /// <summary>
    /// Gives the native heap's free pages back to the system every <see cref="RowsBetweenHeapTrims"/> rows scored
    /// in batches. The per-row loss's libtorch temporaries come from glibc's heap (its mmap threshold rises after the
    /// first large block is freed) and leave it fragmented: without this, RSS grew by 80–220 MB per million rows
    /// although nothing leaked (docs/reliability.md).
    /// </summary>
    private void ReleaseFreedNativeMemory(int rows)
    {
        if (Interlocked.Add(ref _rowsSinceHeapTrim, rows) >= RowsBetweenHeapTrims)
        {
            Interlocked.Exchange(ref _rowsSinceHeapTrim, 0);
            Runtime.NativeHeap.ReleaseFreePages();
        }
    }

    /// <summary>Overwrites every output of the non-finite rows with NaN.</summary>
    private void FillNotFiniteRows(List<int>? notFinite, Span<float> mu, Span<float> logVar, Span<float> reconstruction, Span<float> score)
    {
        if (notFinite is not null)
        {
            FillRowsWithNaN(mu, LatentDimension, notFinite);
            FillRowsWithNaN(logVar, LatentDimension, notFinite);
            FillRowsWithNaN(reconstruction, InputSize, notFinite);
            FillRowsWithNaN(score, 1, notFinite);
        }
    }

    /// <summary>Runs <paramref name="work"/> under the forward lock, as <see cref="Infer"/> does (for evaluations kept in their own files).</summary>
    internal T UnderForwardLock<T>(Func<T> work)
    {
        lock (_forwardLock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return work();
        }
    }

    /// <summary>Decodes rows × LatentDimension latents into rows × InputSize probabilities, or Gaussian means in raw units (NaN rows for non-finite latents).</summary>
    public void Decode(ReadOnlySpan<float> latents, int rows, Span<float> output)
    {
        if (rows == 0)
        {
            return;
        }

        var notFinite = FindNotFiniteRows(latents, rows, LatentDimension, default, unitRange: false);
        var networkInputs = notFinite is null ? latents : ZeroRows(latents, rows, LatentDimension, notFinite);
        lock (_forwardLock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            using var scope = torch.NewDisposeScope();
            using var noGrad = torch.no_grad();
            var z = Upload(networkInputs, rows, LatentDimension);
            CopyOut(Output(Network.DecodeLogits(z)), output);
        }

        if (notFinite is not null)
        {
            FillRowsWithNaN(output, InputSize, notFinite);
        }
    }

    /// <summary>Draws z ~ N(0, I) with its own generator (seeded) and decodes it.</summary>
    public float[] Sample(int count, long seed)
    {
        var output = new float[checked(count * InputSize)];
        if (count == 0)
        {
            return output; // libtorch's data<T>() of an empty tensor throws; nothing to draw or decode.
        }

        float[] z;
        using (var generator = new Generator((ulong)seed, torch.CPU))
        using (var scope = torch.NewDisposeScope())
        {
            z = torch.randn(new long[] { count, LatentDimension }, generator: generator).data<float>().ToArray();
        }

        Decode(z, count, output);
        return output;
    }

    /// <summary>What the decoder's output means to a user: sigmoid probabilities, or Gaussian means back in raw units.</summary>
    private Tensor Output(Tensor decoded) => Standardization is { } standardization ? standardization.Unstandardize(decoded) : torch.sigmoid(decoded);

    /// <summary>
    /// Feature rows as the network takes them: a rows × InputSize tensor on this model's device, standardized for the
    /// Gaussian likelihood.
    /// </summary>
    public Tensor ToDevice(ReadOnlySpan<float> values, int rows, int width)
    {
        if (width != InputSize)
        {
            throw new ArgumentException($"Feature rows have {InputSize} values; got a width of {width}.");
        }

        var x = Upload(values, rows, width);
        if (Standardization is not { } standardization)
        {
            return x;
        }

        using (x)
        {
            return standardization.Standardize(x);
        }
    }

    /// <summary>A copy of <paramref name="values"/> as a rows × width tensor on this model's device.</summary>
    /// <remarks>
    /// The copy goes into memory that libtorch allocates (64-byte aligned) rather than wrapping a managed array: MKL's
    /// kernels may pick a different code path, and round differently, depending on the alignment of their input.
    /// </remarks>
    private Tensor Upload(ReadOnlySpan<float> values, int rows, int width)
    {
        var expected = (long)rows * width;
        if (values.Length != expected)
        {
            throw new ArgumentException($"Expected {rows} rows of {width} values ({expected}), got {values.Length} values.");
        }

        var t = torch.empty(new long[] { rows, width }, ScalarType.Float32);
        System.Runtime.InteropServices.MemoryMarshal.AsBytes(values).CopyTo(t.bytes);
        if (Device.type == DeviceType.CPU)
        {
            return t;
        }

        // The CPU staging copy is not needed once the data is on the device (for a resident training set it is the
        // whole data set): free it now rather than whenever the finalizer runs.
        using (t)
        {
            return t.to(Device);
        }
    }

    /// <summary>Rows with a NaN or infinite value (null when there are none); fills <paramref name="rowValues"/> when given.</summary>
    private static List<int>? FindNotFiniteRows(ReadOnlySpan<float> values, int rows, int width, Span<RowValues> rowValues, bool unitRange)
    {
        var expected = (long)rows * width;
        if (values.Length != expected)
        {
            throw new ArgumentException($"Expected {rows} rows of {width} values ({expected}), got {values.Length} values.");
        }

        List<int>? notFinite = null;
        for (var row = 0; row < rows; row++)
        {
            var kind = FeatureColumn.Classify(values.Slice(row * width, width), unitRange);
            if (!rowValues.IsEmpty)
            {
                rowValues[row] = kind;
            }

            if (kind == RowValues.NotFinite)
            {
                (notFinite ??= []).Add(row);
            }
        }

        return notFinite;
    }

    /// <summary>A copy of <paramref name="values"/> with <paramref name="rowsToZero"/> set to zero.</summary>
    private static float[] ZeroRows(ReadOnlySpan<float> values, int rows, int width, List<int> rowsToZero)
    {
        var copy = values[..(rows * width)].ToArray();
        foreach (var row in rowsToZero)
        {
            copy.AsSpan(row * width, width).Clear();
        }

        return copy;
    }

    private static void FillRowsWithNaN(Span<float> destination, int width, List<int> rows)
    {
        if (destination.IsEmpty)
        {
            return;
        }

        foreach (var row in rows)
        {
            destination.Slice(row * width, width).Fill(float.NaN);
        }
    }

    private static void CopyOut(Tensor t, Span<float> destination)
    {
        if (destination.IsEmpty)
        {
            return;
        }

        using var cpu = t.device_type == DeviceType.CPU ? t.contiguous() : t.cpu().contiguous();
        using var values = cpu.data<float>();
        values.CopyTo(destination);
    }

    /// <summary>
    /// The network's parameters by their PyTorch state_dict names, copied to CPU arrays, in the order of
    /// <see cref="VaeNetworkSpec.Layout"/>; for the Gaussian likelihood the standardization follows them.
    /// </summary>
    public IReadOnlyList<(string Name, long[] Shape, float[] Values)> GetParameters()
    {
        lock (_forwardLock)
        {
            // A disposed network still answers named_parameters(), with nothing useful in it.
            ObjectDisposedException.ThrowIf(_disposed, this);
            var byName = new Dictionary<string, (long[] Shape, float[] Values)>(StringComparer.Ordinal);
            foreach (var (name, parameter) in Network.named_parameters())
            {
                using var cpu = parameter.detach().cpu().contiguous();
                byName[name] = (cpu.shape, cpu.data<float>().ToArray());
            }

            if (Standardization is { } standardization)
            {
                byName[GaussianDecoder.MeanName] = ([InputSize], (float[])standardization.Mean.Clone());
                byName[GaussianDecoder.StdName] = ([InputSize], (float[])standardization.Std.Clone());
            }

            return Architecture.Layout.Select(t => (t.Name, byName[t.Name].Shape, byName[t.Name].Values)).ToList();
        }
    }

    /// <summary>Overwrites every parameter; names and shapes must match the architecture exactly.</summary>
    public void SetParameters(IReadOnlyDictionary<string, (long[] Shape, float[] Values)> parameters)
    {
        lock (_forwardLock)
        {
            var own = Network.named_parameters().ToList();
            var ownNames = Architecture.Layout.Select(t => t.Name).ToList();
            var missing = ownNames.Where(n => !parameters.ContainsKey(n)).ToList();
            var extra = parameters.Keys.Except(ownNames).ToList();
            if (missing.Count > 0 || extra.Count > 0)
            {
                throw new InvalidDataException(
                    $"Parameters do not match the architecture: missing [{string.Join(", ", missing)}], unexpected [{string.Join(", ", extra)}].");
            }

            // The managed single-row forward copied the old weights.
            Volatile.Write(ref _singleRow, null);
            using var noGrad = torch.no_grad();
            foreach (var (name, parameter) in own)
            {
                var (shape, values) = parameters[name];
                if (!shape.SequenceEqual(parameter.shape))
                {
                    throw new InvalidDataException(
                        $"Parameter '{name}' has shape [{string.Join(", ", shape)}]; the architecture needs [{string.Join(", ", parameter.shape)}].");
                }

                using var source = torch.tensor(values, shape);
                parameter.copy_(source);
            }

            if (Likelihood == VaeLikelihood.Gaussian)
            {
                foreach (var name in new[] { GaussianDecoder.MeanName, GaussianDecoder.StdName })
                {
                    if (parameters[name].Values.Length != InputSize)
                    {
                        throw new InvalidDataException($"Parameter '{name}' has {parameters[name].Values.Length} values; the architecture needs {InputSize}.");
                    }
                }

                Standardization = new FeatureStandardization(parameters[GaussianDecoder.MeanName].Values, parameters[GaussianDecoder.StdName].Values);
            }
        }
    }

    public void Dispose()
    {
        lock (_forwardLock)
        {
            if (!_disposed)
            {
                _disposed = true;
                _randomStateAfterInit?.Dispose();
                Interlocked.Exchange(ref _spareInputBatch, null)?.Dispose();
                Network.Dispose();
            }
        }
    }
}
