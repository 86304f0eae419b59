using System.Text.Json;
using System.Text.Json.Serialization;
using Vae.ML.Samples.Reporting;

namespace Vae.ML.Samples.Bench;

/// <summary>The sizes of one bench run.</summary>
/// <param name="Quick">Quick mode (a few hundred rows, to prove the bench works; its numbers mean little).</param>
/// <param name="TrainRows">Training rows of the main epoch measure.</param>
/// <param name="BatchSize">Batch size of the main measures.</param>
/// <param name="Threads">libtorch intra-op threads (both contenders).</param>
/// <param name="Repeats">Interleaved repetitions of the main epoch measure.</param>
/// <param name="ScalingRows">Training rows of the epoch-vs-rows curve.</param>
/// <param name="ScalingBatches">Batch sizes of the epoch-vs-batch curve.</param>
/// <param name="ExtractionRows">Rows of the extraction-vs-rows curve.</param>
/// <param name="StreamRows">Rows of the streamed-training memory curve (one child process each).</param>
/// <param name="PredictionCalls">Single-row prediction calls per contender (after warm-up).</param>
/// <param name="ProfileSteps">Training steps timed per phase.</param>
/// <param name="VariantRows">Training rows of each other architecture and likelihood (the convolutional network costs
/// ≈ 15× the MLP per row); 0 in reports written before that measure existed.</param>
internal sealed record BenchSizes(bool Quick, int TrainRows, int BatchSize, int Threads, int Repeats, int[] ScalingRows, int[] ScalingBatches,
    int[] ExtractionRows, int[] StreamRows, int PredictionCalls, int ProfileSteps, int VariantRows = 0)
{
    /// <summary>The full bench: the report configuration on all of MNIST (about 6-9 minutes on 2 busy cores).</summary>
    public static BenchSizes Full(int threads) =>
        new(false, 60_000, 128, threads, 5, [15_000, 30_000, 60_000], [64, 128, 256, 512], [1_000, 10_000, 100_000],
            [15_000, 30_000, 60_000, 120_000], 20_000, 200, 4_096);

    /// <summary>How the sizes compare to the full bench, for the reader of the results.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public string Description => Quick ? "QUICK mode: the numbers only prove that the bench runs"
        : TrainRows >= 60_000 ? "full sizes" : $"reduced sizes: {TrainRows:N0} training rows instead of 60,000";

    /// <summary>A few hundred rows: proves every measure runs (CI), says nothing about speed.</summary>
    public static BenchSizes QuickRun(int threads) =>
        new(true, 384, 128, threads, 2, [128, 384], [64, 256], [100, 1_000], [256, 512], 200, 5, 256);
}

/// <summary>Epoch times of the contenders in one configuration, measured interleaved (Vae.ML, PyTorch, floor, ...).</summary>
/// <param name="Rows">Training rows.</param>
/// <param name="BatchSize">Batch size.</param>
/// <param name="VaeMl">Vae.ML epoch seconds (the trainer's own per-epoch clock).</param>
/// <param name="PyTorch">PyTorch epoch seconds, or null when it did not run.</param>
/// <param name="GemmFloor">The GEMM floor of an epoch, seconds.</param>
/// <param name="PyTorchOverVaeMl">Median of the per-pair ratios PyTorch / Vae.ML (how many times faster Vae.ML is).</param>
/// <param name="VaeMlOverFloor">Median of the per-pair ratios Vae.ML / floor.</param>
internal sealed record EpochMeasure(int Rows, int BatchSize, Spread VaeMl, Spread? PyTorch, Spread GemmFloor, double? PyTorchOverVaeMl, double VaeMlOverFloor);

/// <summary>Latent extraction (Transform + a cursor reading Latent) against the encoder's FP32 limit.</summary>
/// <param name="Rows">Rows read.</param>
/// <param name="RowsPerSecond">Vae.ML throughput.</param>
/// <param name="EncoderLimitRowsPerSecond">Bare libtorch encoder throughput (batches of 1024 resident rows).</param>
/// <param name="OverLimit">Median of the per-pair ratios Vae.ML / limit.</param>
/// <param name="SourceRowsPerSecond">The same rows read from the source view alone (a cursor and a getter of its feature
/// column, no model): what any consumer of the view pays before the encoder; null in reports written before it was measured.</param>
internal sealed record ExtractionMeasure(int Rows, Spread RowsPerSecond, Spread EncoderLimitRowsPerSecond, double OverLimit, Spread? SourceRowsPerSecond = null);

/// <summary>One-row latency of <c>PredictionEngine</c> (Latent only) against a bare TorchSharp one-row encoder call.</summary>
/// <param name="Calls">Calls per contender.</param>
/// <param name="MedianMicroseconds">PredictionEngine median.</param>
/// <param name="P99Microseconds">PredictionEngine 99th percentile.</param>
/// <param name="BareMedianMicroseconds">Bare TorchSharp median.</param>
/// <param name="BareP99Microseconds">Bare TorchSharp 99th percentile.</param>
internal sealed record PredictionMeasure(int Calls, double MedianMicroseconds, double P99Microseconds, double BareMedianMicroseconds, double BareP99Microseconds)
{
    /// <summary>Median over bare median.</summary>
    public double MedianOverBare => MedianMicroseconds / BareMedianMicroseconds;
}

/// <summary>Training from a stream (MaxInMemoryBytes = 0) against the in-memory path, and its memory per row count.</summary>
/// <param name="Rows">Rows of the in-process epoch comparison.</param>
/// <param name="InMemory">In-memory epoch seconds.</param>
/// <param name="Streamed">Streamed epoch seconds (alternated with the in-memory fits).</param>
/// <param name="StreamedOverInMemory">Median of the per-pair ratios.</param>
/// <param name="PeakRssByRows">Peak RSS (MB) of a child process that trains one streamed epoch, per row count.</param>
internal sealed record StreamMeasure(int Rows, Spread InMemory, Spread Streamed, double StreamedOverInMemory, IReadOnlyList<RssPoint> PeakRssByRows);

/// <summary>Peak RSS of one child run.</summary>
/// <param name="Rows">Rows it trained on.</param>
/// <param name="PeakRssMegabytes">Its VmHWM in MB.</param>
/// <param name="EpochSeconds">Its epoch time.</param>
/// <param name="ManagedRetainedMegabytes">Managed heap still reachable after training (after a full collection): tells
/// retained memory from garbage the GC had not yet returned. Null in reports written before it was measured.</param>
/// <param name="ManagedCommittedMegabytes">Memory the GC had committed at its last collection before that one.</param>
/// <param name="ManagedAllocatedMegabytes">Everything the process allocated on the managed heap in its life.</param>
internal sealed record RssPoint(int Rows, double PeakRssMegabytes, double EpochSeconds, double? ManagedRetainedMegabytes = null,
    double? ManagedCommittedMegabytes = null, double? ManagedAllocatedMegabytes = null);

/// <summary>
/// One of Vae.ML's other configurations (the MLP with the Gaussian likelihood, the convolutional network with either)
/// against its PyTorch twin: epochs interleaved as in the main measure, then latent extraction and single-row latency.
/// </summary>
/// <param name="Architecture">The network (<see cref="VaeOptions.Architecture"/>).</param>
/// <param name="Likelihood">The likelihood (<see cref="VaeOptions.Likelihood"/>).</param>
/// <param name="Rows">Training rows.</param>
/// <param name="BatchSize">Batch size.</param>
/// <param name="VaeMl">Vae.ML epoch seconds.</param>
/// <param name="PyTorch">The PyTorch twin's epoch seconds, or null when it did not run.</param>
/// <param name="PyTorchOverVaeMl">Median of the per-pair ratios PyTorch / Vae.ML.</param>
/// <param name="ExtractionRows">Rows of the extraction measure (Transform + a cursor reading Latent).</param>
/// <param name="ExtractionRowsPerSecond">Its throughput.</param>
/// <param name="PredictionCalls">Single-row <c>PredictionEngine</c> calls (Latent only) after a warm-up.</param>
/// <param name="PredictionMedianMicroseconds">Their median.</param>
/// <param name="PredictionP99Microseconds">Their 99th percentile.</param>
internal sealed record VariantMeasure(VaeArchitecture Architecture, VaeLikelihood Likelihood, int Rows, int BatchSize, Spread VaeMl, Spread? PyTorch,
    double? PyTorchOverVaeMl, int ExtractionRows, Spread ExtractionRowsPerSecond, int PredictionCalls, double PredictionMedianMicroseconds,
    double PredictionP99Microseconds);

/// <summary>Peak memory of whole runs.</summary>
/// <param name="ReportRunMegabytes">Peak RSS of a full <c>vae-ml report</c> child run, or null when skipped.</param>
/// <param name="ReportRunSeconds">Its wall time.</param>
/// <param name="ReportCommand">The command it ran.</param>
/// <param name="PyTorchMegabytes">Peak RSS of the PyTorch contender process (all its epochs), or null.</param>
internal sealed record MemoryMeasure(double? ReportRunMegabytes, double? ReportRunSeconds, string? ReportCommand, double? PyTorchMegabytes);

/// <summary>Everything one bench run measured; written as bench.json.</summary>
internal sealed record BenchReport
{
    /// <summary>UTC time the run started.</summary>
    public required DateTime StartedUtc { get; init; }

    /// <summary>Wall time of the whole run.</summary>
    public required double Seconds { get; init; }

    /// <summary>Where the images came from.</summary>
    public required string Data { get; init; }

    /// <summary>Sizes and settings.</summary>
    public required BenchSizes Sizes { get; init; }

    /// <summary>Software and machine.</summary>
    public required SoftwareVersions Versions { get; init; }

    /// <summary>torch.__version__ of the PyTorch contender, or null.</summary>
    public string? PyTorchVersion { get; init; }

    /// <summary>Why PyTorch did not run, or null when it did.</summary>
    public string? PyTorchSkipped { get; init; }

    /// <summary>Load average (1 min) when the run started and ended: how busy the machine was.</summary>
    public required double[] LoadAverage { get; init; }

    /// <summary>The main epoch measure (report configuration).</summary>
    public required EpochMeasure Epoch { get; init; }

    /// <summary>Epoch time vs training rows.</summary>
    public required IReadOnlyList<EpochMeasure> EpochByRows { get; init; }

    /// <summary>Epoch time vs batch size.</summary>
    public required IReadOnlyList<EpochMeasure> EpochByBatch { get; init; }

    /// <summary>Extraction throughput vs rows.</summary>
    public required IReadOnlyList<ExtractionMeasure> Extraction { get; init; }

    /// <summary>Single-row prediction latency.</summary>
    public required PredictionMeasure Prediction { get; init; }

    /// <summary>Serving through the ONNX export next to libtorch (null in reports written before it existed).</summary>
    public OnnxServingMeasure? Onnx { get; init; }

    /// <summary>Streamed training.</summary>
    public required StreamMeasure Stream { get; init; }

    /// <summary>Peak memory of whole runs.</summary>
    public required MemoryMeasure Memory { get; init; }

    /// <summary>Per-phase profile of a training step.</summary>
    public required StepProfile Profile { get; init; }

    /// <summary>The Adam pass against the memory bandwidth (null in reports written before it was measured).</summary>
    public RooflineMeasure? Roofline { get; init; }

    /// <summary>The other architectures and likelihoods (null in reports written before they were measured).</summary>
    public IReadOnlyList<VariantMeasure>? Variants { get; init; }

    /// <summary>Things a reader must know (skipped parts, fallbacks).</summary>
    public required IReadOnlyList<string> Notes { get; init; }

    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new JsonStringEnumConverter() },
    };

    /// <summary>Writes this report as indented JSON.</summary>
    public void Save(string path) => File.WriteAllText(path, JsonSerializer.Serialize(this, JsonOptions));

    /// <summary>Reads a report written by <see cref="Save"/>.</summary>
    public static BenchReport Load(string path) =>
        JsonSerializer.Deserialize<BenchReport>(File.ReadAllText(path), JsonOptions)
        ?? throw new InvalidDataException($"'{path}' holds no bench report.");
}
