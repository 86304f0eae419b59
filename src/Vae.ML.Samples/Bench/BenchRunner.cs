using System.Diagnostics;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.ML;
using Microsoft.ML.Data;
using Vae.ML.Datasets;
using Vae.ML.Samples.Cli;
using Vae.ML.Samples.Training;
using static TorchSharp.torch;

namespace Vae.ML.Samples.Bench;

/// <summary>What to run and where to write it.</summary>
/// <param name="Sizes">Sizes (full or quick).</param>
/// <param name="OutputDirectory">Folder for bench.json, results.md and the plots.</param>
/// <param name="Python">Interpreter of the PyTorch contender.</param>
/// <param name="UsePyTorch">False to run without the PyTorch contender.</param>
/// <param name="Synthetic">Use synthetic images instead of MNIST.</param>
/// <param name="DataDirectory">MNIST folder (null: the usual cache).</param>
/// <param name="MeasureReportRun">Run a full <c>vae-ml report</c> as a child for its peak RSS.</param>
/// <param name="TrainingOnly">Measure only the training epoch against the GEMM floor, the Adam pass's memory roofline and
/// the step profile (on one thread and on the bench's threads); print them and write nothing.</param>
internal sealed record BenchSettings(BenchSizes Sizes, string OutputDirectory, string Python, bool UsePyTorch, bool Synthetic,
    string? DataDirectory, bool MeasureReportRun, bool TrainingOnly = false);

/// <summary>
/// Runs every measure of the performance issue's table with the contenders interleaved (Vae.ML, PyTorch, the
/// libtorch floor, then again), so that a noisy machine moves all of them together and the ratios stay meaningful.
/// </summary>
internal sealed class BenchRunner(BenchSettings settings, CliContext context, CancellationToken cancellationToken)
{
    /// <summary>The report's network: 784-400-2.</summary>
    private const int Hidden = 400, Latent = 2, Seed = 0;

    private const int FloorRepeats = 30;

    private readonly List<string> _notes = [];
    private BenchSizes Sizes => settings.Sizes;

    /// <summary>Runs the bench and returns what it measured (nothing written yet).</summary>
    /// <remarks>libtorch's thread count is process-wide: it is put back when the bench ends (it may run in a host process).</remarks>
    public BenchReport Run()
    {
        int? threadsBefore = null;
        try
        {
            return Measure(threads => threadsBefore ??= threads);
        }
        finally
        {
            if (threadsBefore is int threads)
            {
                set_num_threads(threads);
            }
        }
    }

    /// <summary>
    /// <c>--training-only</c>: the main epoch measure (Vae.ML interleaved with the GEMM floor), the Adam pass's memory
    /// roofline, and the step profile with its managed passes on one thread and on the bench's threads, back to back in
    /// this process; printed, nothing written. The quick A/B of a training-speed change.
    /// </summary>
    public void RunTrainingOnly()
    {
        int? threadsBefore = null;
        try
        {
            BenchImages images = LoadImages();
            InitializeTorch(images, threads => threadsBefore ??= threads);
            Say($"libtorch threads: {get_num_threads()}.");
            int trainRows = Math.Min(Sizes.TrainRows, images.TrainRows);
            Say($"Training epochs: {trainRows:N0} rows, batch {Sizes.BatchSize}, {Sizes.Repeats} interleaved repeats ...");
            (EpochMeasure epoch, VaeTransformer model) = MeasureEpochs(images, null, trainRows, Sizes.BatchSize, Sizes.Repeats, keepModel: false);
            Say(Describe(epoch));
            Say(MeasureRoofline().Describe());
            float[] rows = images.Train.AsSpan(0, trainRows * images.Width).ToArray();
            foreach (int workers in Sizes.Threads > 1 ? new[] { 1, Sizes.Threads, 1, Sizes.Threads, 1, Sizes.Threads } : [1])
            {
                Say(DescribeProfile(TorchReference.ProfileSteps(rows, images.Width, Hidden, Latent, Sizes.BatchSize, Sizes.ProfileSteps, Seed, workers, ProfileTrainedSteps(trainRows))));
            }
        }
        finally
        {
            if (threadsBefore is int threads)
            {
                set_num_threads(threads);
            }
        }
    }

    private RooflineMeasure MeasureRoofline()
    {
        int parameters = (784 * Hidden) + Hidden + (2 * ((Hidden * Latent) + Latent)) + (Latent * Hidden) + Hidden + (Hidden * 784) + 784;
        return RooflineMeasure.Measure(parameters, Sizes.Threads, Sizes.Quick ? 5 : 50, Sizes.Quick ? 4 : 64);
    }

    /// <summary>Two epochs' worth of steps: the profile times the state most epochs of a run spend their time in.</summary>
    private int ProfileTrainedSteps(int trainRows) => 2 * (int)Math.Ceiling(trainRows / (double)Sizes.BatchSize);

    private static string DescribeProfile(StepProfile p)
    {
        double gemms = p.ForwardGemms + p.BackwardGemms, managed = Math.Max(0, p.Forward - p.ForwardGemms) + Math.Max(0, p.Backward - p.BackwardGemms);
        return FormattableString.Invariant($"Step profile after {p.TrainedSteps} training steps, managed passes on {p.Workers} thread(s), ms per step: GEMMs {gemms:F3}, managed forward/backward {managed:F3}, ") +
            FormattableString.Invariant($"Adam {p.Optimizer:F3}, data {p.Data:F3}, guard {p.Checks:F3}, release {p.Release:F3}; total {p.Total:F3} (GEMMs {gemms / p.Total:P0}); batch 1: {p.FixedCostPerStep:F3}.");
    }

    private BenchReport Measure(Action<int> threadsBefore)
    {
        DateTime started = DateTime.UtcNow;
        var clock = Stopwatch.StartNew();
        double loadBefore = LoadAverage();
        BenchImages images = LoadImages();
        Say($"Data: {images.Source}, {images.TrainRows:N0} training and {images.TestRows:N0} test rows of {images.Width}.");

        InitializeTorch(images, threadsBefore);
        Say($"libtorch threads: {get_num_threads()}.");

        using PyTorchContender? pytorch = StartPyTorch(images, out string? skipped);
        if (pytorch is not null)
        {
            pytorch.Epoch(Math.Min(2048, images.TrainRows), Sizes.BatchSize);
        }

        int trainRows = Math.Min(Sizes.TrainRows, images.TrainRows);
        Say($"Training epochs: {trainRows:N0} rows, batch {Sizes.BatchSize}, {Sizes.Repeats} interleaved repeats ...");
        (EpochMeasure epoch, VaeTransformer model) = MeasureEpochs(images, pytorch, trainRows, Sizes.BatchSize, Sizes.Repeats, keepModel: true);
        using (model)
        {
            Say(Describe(epoch));
            var byRows = Sizes.ScalingRows.Where(r => r <= images.TrainRows)
                .Select(rows => Measured(MeasureEpochs(images, pytorch, rows, Sizes.BatchSize, 2, keepModel: false).Measure)).ToList();
            var byBatch = Sizes.ScalingBatches
                .Select(batch => Measured(MeasureEpochs(images, pytorch, trainRows, batch, 2, keepModel: false).Measure)).ToList();
            var extraction = Sizes.ExtractionRows.Select(rows => MeasureExtraction(model, images, rows)).ToList();
            OnnxServingMeasure onnx = OnnxServing.Measure(model, Path.Combine(settings.OutputDirectory, "model.onnx"), images.Test, OnnxServingSizes.For(Sizes), Sizes.Threads, Say, cancellationToken);
            PredictionMeasure prediction = MeasurePrediction(model, images);
            StreamMeasure stream = MeasureStream(images, trainRows);
            IReadOnlyList<VariantMeasure> variants = MeasureVariants(images);
            Say("Profiling a training step ...");
            RooflineMeasure roofline = MeasureRoofline();
            Say(roofline.Describe());
            StepProfile profile = TorchReference.ProfileSteps(images.Train.AsSpan(0, trainRows * images.Width).ToArray(), images.Width, Hidden, Latent,
                Sizes.BatchSize, Sizes.ProfileSteps, Seed, Sizes.Threads, ProfileTrainedSteps(trainRows));
            Say(DescribeProfile(profile));
            double? pytorchPeak = pytorch?.PeakRssMegabytes();
            MemoryMeasure memory = MeasureReportRun(images, pytorchPeak);

            return new BenchReport
            {
                StartedUtc = started,
                Seconds = clock.Elapsed.TotalSeconds,
                Data = images.Source,
                Sizes = Sizes with { TrainRows = trainRows },
                Versions = SampleRun.CurrentVersions(),
                PyTorchVersion = pytorch?.TorchVersion,
                PyTorchSkipped = skipped,
                LoadAverage = [loadBefore, LoadAverage()],
                Epoch = epoch,
                EpochByRows = byRows,
                EpochByBatch = byBatch,
                Extraction = extraction,
                Prediction = prediction,
                Onnx = onnx,
                Stream = stream,
                Variants = variants,
                Memory = memory,
                Profile = profile,
                Roofline = roofline,
                Notes = _notes,
            };
        }
    }

    /// <summary>
    /// The child side of the streamed-memory measure: trains <paramref name="rows"/> rows streamed (MaxInMemoryBytes
    /// = 0) for one epoch and prints one JSON line with its epoch time and its own peak RSS.
    /// </summary>
    public void RunStreamWorker(int rows)
    {
        BenchImages images = LoadImages();
        InitializeTorch(images);
        double seconds = 0;
        using (Fit(images, rows, 1, Sizes.BatchSize, 0, m => seconds = m.Seconds))
        {
        }

        const double megabyte = 1024.0 * 1024.0;
        double? peak = ChildProcess.ReadPeakMegabytes("/proc/self/status");
        double committed = GC.GetGCMemoryInfo().TotalCommittedBytes / megabyte;
        double allocated = GC.GetTotalAllocatedBytes() / megabyte;
        double retained = GC.GetTotalMemory(forceFullCollection: true) / megabyte;
        context.Out.WriteLine(new JsonObject
        {
            ["rows"] = rows, ["epoch_s"] = seconds, ["peak_rss_mb"] = peak, ["managed_retained_mb"] = retained,
            ["managed_committed_mb"] = committed, ["managed_allocated_mb"] = allocated,
        }.ToJsonString());
    }

    /// <summary>
    /// A first small fit: it makes TorchSharp load through Vae.ML (with its native fix; a direct torch call before it
    /// would fail for good on Debian 12) and warms the JIT. Then libtorch gets the bench's thread count.
    /// </summary>
    private void InitializeTorch(BenchImages images, Action<int>? threadsBefore = null)
    {
        using (Fit(images, Math.Min(256, images.TrainRows), 1, Sizes.BatchSize, long.MaxValue, null))
        {
        }

        threadsBefore?.Invoke(get_num_threads());
        set_num_threads(Sizes.Threads);
    }

    private EpochMeasure Measured(EpochMeasure measure)
    {
        Say(Describe(measure));
        return measure;
    }

    private BenchImages LoadImages()
    {
        int testRows = Sizes.Quick ? 256 : 10_000;
        if (settings.Synthetic)
        {
            return BenchImages.Synthetic(Math.Max(Sizes.TrainRows, Sizes.ScalingRows.Max()), testRows);
        }

        try
        {
            BenchImages mnist = BenchImages.Mnist(settings.DataDirectory, context.Logger);
            return Sizes.Quick
                ? mnist with { Train = mnist.Train[..(Sizes.TrainRows * mnist.Width)], Test = mnist.Test[..(testRows * mnist.Width)] }
                : mnist;
        }
        catch (DatasetUnavailableException e)
        {
            Note($"MNIST is not available ({e.Message}); the bench ran on synthetic images of the same shape.");
            return BenchImages.Synthetic(Math.Max(Sizes.TrainRows, Sizes.ScalingRows.Max()), testRows);
        }
    }

    private PyTorchContender? StartPyTorch(BenchImages images, out string? skipped)
    {
        if (!settings.UsePyTorch)
        {
            skipped = "switched off (--no-pytorch)";
        }
        else
        {
            PyTorchContender? contender = PyTorchContender.TryStart(settings.Python, images, Sizes.Threads, out skipped);
            if (contender is not null)
            {
                Say($"PyTorch contender: torch {contender.TorchVersion}, {contender.Threads} threads.");
                return contender;
            }
        }

        Note($"PyTorch was NOT run: {skipped}. Ratios to PyTorch are missing from this run.");
        return null;
    }

    private VaeTransformer Fit(BenchImages images, int rows, int epochs, int batch, long maxInMemoryBytes, Action<VaeEpochMetrics>? onEpoch,
        VaeArchitecture architecture = VaeArchitecture.Mlp, VaeLikelihood likelihood = VaeLikelihood.Bernoulli)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var ml = new MLContext(seed: Seed);
        var options = new VaeOptions
        {
            Epochs = epochs,
            BatchSize = batch,
            Seed = Seed,
            MaxInMemoryBytes = maxInMemoryBytes,
            Progress = onEpoch is null ? null : new EpochSink(onEpoch),
            CancellationToken = cancellationToken,
            Architecture = architecture,
            ImageShape = architecture == VaeArchitecture.Convolutional ? [1, ImageSide, ImageSide] : null,
            Likelihood = likelihood,
        };
        return ml.Transforms.Vae(options).Fit(new CyclingImagesView(images.Train, images.Width, rows));
    }

    /// <summary>The side of the bench's square images (MNIST's 28×28, and the synthetic images of the same shape).</summary>
    private const int ImageSide = 28;

    /// <summary>
    /// The other configurations of the issue "[7 of 10]" — the MLP with the Gaussian likelihood, the convolutional
    /// network with either likelihood — each against its PyTorch twin (pytorch_bench.py --arch/--likelihood) with the
    /// epochs interleaved as in the main measure, then its latent extraction and single-row latency.
    /// </summary>
    private List<VariantMeasure> MeasureVariants(BenchImages images)
    {
        var measures = new List<VariantMeasure>();
        int rows = Math.Min(Sizes.VariantRows, images.TrainRows);
        if (rows < 1 || images.Width != ImageSide * ImageSide)
        {
            Note($"The other architectures and likelihoods were not measured (they need {ImageSide}x{ImageSide} images and VariantRows > 0).");
            return measures;
        }

        foreach ((VaeArchitecture architecture, VaeLikelihood likelihood) in new[]
        {
            (VaeArchitecture.Mlp, VaeLikelihood.Gaussian),
            (VaeArchitecture.Convolutional, VaeLikelihood.Bernoulli),
            (VaeArchitecture.Convolutional, VaeLikelihood.Gaussian),
        })
        {
            Say($"{architecture}, {likelihood}: {rows:N0} rows, batch {Sizes.BatchSize} ...");
            using PyTorchContender? twin = settings.UsePyTorch ? PyTorchContender.TryStart(settings.Python, images, Sizes.Threads, out _, architecture, likelihood) : null;
            twin?.Epoch(Math.Min(256, rows), Sizes.BatchSize); // its first epoch pays for oneDNN's set-up
            var vaeMl = new List<double>();
            var pytorchTimes = new List<double>();
            using VaeTransformer model = Fit(images, rows, Sizes.Quick ? 2 : 3, Sizes.BatchSize, long.MaxValue, metrics =>
            {
                vaeMl.Add(metrics.Seconds);
                if (twin is not null)
                {
                    pytorchTimes.Add(twin.Epoch(rows, Sizes.BatchSize));
                }
            }, architecture, likelihood);

            int extractionRows = Math.Min(10_000, Sizes.ExtractionRows.Max());
            var view = new CyclingImagesView(images.Test, images.Width, extractionRows);
            ReadLatents(model, view); // warm-up
            var rates = new List<double>();
            for (int r = 0; r < 3; r++)
            {
                long start = Stopwatch.GetTimestamp();
                rates.Add(ReadLatents(model, view) / Stopwatch.GetElapsedTime(start).TotalSeconds);
            }

            (int calls, double median, double p99) = PredictionLatency(model, images, Math.Max(100, Sizes.PredictionCalls / 10));
            var measure = new VariantMeasure(architecture, likelihood, rows, Sizes.BatchSize, Spread.Of(vaeMl), pytorchTimes.Count > 0 ? Spread.Of(pytorchTimes) : null,
                pytorchTimes.Count > 0 ? Spread.Of(pytorchTimes.Zip(vaeMl, (t, v) => t / v)).Median : null, extractionRows, Spread.Of(rates), calls, median, p99);
            string versus = measure.PyTorch is null ? "PyTorch twin not run" : F($"PyTorch {measure.PyTorch.Median:F2} s ({measure.PyTorchOverVaeMl:F2}x Vae.ML)");
            Say(F($"{architecture}, {likelihood}: epoch {measure.VaeMl.Median:F2} s, {versus}; extraction {measure.ExtractionRowsPerSecond.Median:N0} rows/s; PredictionEngine median {median:F1} µs, p99 {p99:F1} µs."));
            measures.Add(measure);
        }

        return measures;
    }

    private static string F(FormattableString text) => FormattableString.Invariant(text);

    /// <summary>
    /// One Vae.ML fit of <paramref name="epochs"/> epochs; after each epoch (inside the trainer's progress callback,
    /// so Vae.ML waits) one PyTorch epoch of the same rows and batch, then the GEMM floor.
    /// </summary>
    private (EpochMeasure Measure, VaeTransformer Model) MeasureEpochs(BenchImages images, PyTorchContender? pytorch, int rows, int batch, int epochs, bool keepModel)
    {
        var vaeMl = new List<double>();
        var pytorchTimes = new List<double>();
        var floor = new List<double>();
        VaeTransformer model = Fit(images, rows, epochs, batch, long.MaxValue, metrics =>
        {
            vaeMl.Add(metrics.Seconds);
            if (pytorch is not null)
            {
                pytorchTimes.Add(pytorch.Epoch(rows, batch));
            }

            floor.Add(TorchReference.EpochGemmFloorSeconds(rows, batch, images.Width, Hidden, FloorRepeats));
        });
        if (!keepModel)
        {
            model.Dispose();
        }

        var measure = new EpochMeasure(rows, batch, Spread.Of(vaeMl), pytorchTimes.Count > 0 ? Spread.Of(pytorchTimes) : null, Spread.Of(floor),
            pytorchTimes.Count > 0 ? Spread.Of(pytorchTimes.Zip(vaeMl, (t, v) => t / v)).Median : null,
            Spread.Of(vaeMl.Zip(floor, (v, f) => v / f)).Median);
        return (measure, model);
    }

    /// <summary>Transform + a cursor reading Latent over <paramref name="rows"/> rows, alternated with the encoder limit.</summary>
    private ExtractionMeasure MeasureExtraction(VaeTransformer model, BenchImages images, int rows)
    {
        int repeats = Sizes.Quick ? 2 : rows >= 100_000 ? 3 : 5;
        var view = new CyclingImagesView(images.Test, images.Width, rows);
        ReadLatents(model, view); // warm-up
        ReadSource(view);
        var rates = new List<double>();
        var limits = new List<double>();
        var sources = new List<double>();
        for (int r = 0; r < repeats; r++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            long start = Stopwatch.GetTimestamp();
            long read = ReadLatents(model, view);
            rates.Add(read / Stopwatch.GetElapsedTime(start).TotalSeconds);
            limits.Add(TorchReference.EncoderRowsPerSecond(1024, images.Width, Hidden, Latent, 10));
            start = Stopwatch.GetTimestamp();
            read = ReadSource(view);
            sources.Add(read / Stopwatch.GetElapsedTime(start).TotalSeconds);
        }

        var measure = new ExtractionMeasure(rows, Spread.Of(rates), Spread.Of(limits), Spread.Of(rates.Zip(limits, (v, l) => v / l)).Median, Spread.Of(sources));
        Say(string.Create(CultureInfo.InvariantCulture,
            $"Extraction {rows:N0} rows: {measure.RowsPerSecond.Median:N0} rows/s (encoder limit {measure.EncoderLimitRowsPerSecond.Median:N0}, ratio {measure.OverLimit:F2}; the source read alone {measure.SourceRowsPerSecond!.Median:N0} rows/s)."));
        return measure;
    }

    /// <summary>The source's feature column read alone: the share of an extraction pass that is not Vae.ML's.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static long ReadSource(IDataView view)
    {
        DataViewSchema.Column features = view.Schema[Datasets.Mnist.FeaturesColumnName];
        using DataViewRowCursor cursor = view.GetRowCursor([features]);
        ValueGetter<VBuffer<float>> getter = cursor.GetGetter<VBuffer<float>>(features);
        VBuffer<float> value = default;
        long rows = 0;
        while (cursor.MoveNext())
        {
            getter(ref value);
            rows++;
        }

        return rows;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // the consumer's loop, like the source (see CyclingImagesView)
    private static long ReadLatents(VaeTransformer model, IDataView view)
    {
        IDataView scored = model.Transform(view);
        DataViewSchema.Column latent = scored.Schema[model.LatentColumnName];
        using DataViewRowCursor cursor = scored.GetRowCursor([latent]);
        ValueGetter<VBuffer<float>> getter = cursor.GetGetter<VBuffer<float>>(latent);
        VBuffer<float> value = default;
        long rows = 0;
        while (cursor.MoveNext())
        {
            getter(ref value);
            rows++;
        }

        return rows;
    }

    /// <summary>A <c>PredictionEngine</c> that reads the Latent column only, for rows of <paramref name="width"/> values.</summary>
    private static PredictionEngine<ImageInput, LatentOutput> LatentEngine(VaeTransformer model, int width)
    {
        var ml = new MLContext(seed: Seed);
        SchemaDefinition input = SchemaDefinition.Create(typeof(ImageInput));
        input[nameof(ImageInput.Features)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, width);
        SchemaDefinition output = SchemaDefinition.Create(typeof(LatentOutput));
        output[nameof(LatentOutput.Latent)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, model.LatentDimension);
        return ml.Model.CreatePredictionEngine<ImageInput, LatentOutput>(model, inputSchemaDefinition: input, outputSchemaDefinition: output);
    }

    /// <summary><paramref name="calls"/> single-row <c>PredictionEngine</c> calls (Latent only) after 200 warm-up calls: count, median and p99 in µs.</summary>
    private (int Calls, double Median, double P99) PredictionLatency(VaeTransformer model, BenchImages images, int calls)
    {
        using PredictionEngine<ImageInput, LatentOutput> engine = LatentEngine(model, images.Width);
        int distinct = Math.Min(1000, images.TestRows);
        var inputs = Enumerable.Range(0, distinct).Select(i => new ImageInput { Features = images.Test.AsSpan(i * images.Width, images.Width).ToArray() }).ToArray();
        for (int i = 0; i < 200; i++)
        {
            engine.Predict(inputs[i % distinct]);
        }

        var times = new List<double>(calls);
        for (int i = 0; i < calls; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            long start = Stopwatch.GetTimestamp();
            engine.Predict(inputs[i % distinct]);
            times.Add(Stopwatch.GetElapsedTime(start).TotalMicroseconds);
        }

        times.Sort();
        return (times.Count, Spread.Percentile(times, 0.5), Spread.Percentile(times, 0.99));
    }

    /// <summary>Single-row calls, PredictionEngine and a bare TorchSharp encoder alternating in blocks of 100.</summary>
    private PredictionMeasure MeasurePrediction(VaeTransformer model, BenchImages images)
    {
        using PredictionEngine<ImageInput, LatentOutput> engine = LatentEngine(model, images.Width);
        using var bare = new TorchReference.SingleRowEncoder(images.Width, Hidden, Latent);

        int distinct = Math.Min(1000, images.TestRows);
        var rows = Enumerable.Range(0, distinct).Select(i => images.Test.AsSpan(i * images.Width, images.Width).ToArray()).ToArray();
        var inputs = rows.Select(r => new ImageInput { Features = r }).ToArray();
        for (int i = 0; i < Math.Min(500, Sizes.PredictionCalls); i++)
        {
            engine.Predict(inputs[i % distinct]);
            bare.Encode(rows[i % distinct]);
        }

        var engineTimes = new List<double>(Sizes.PredictionCalls);
        var bareTimes = new List<double>(Sizes.PredictionCalls);
        const int block = 100;
        for (int done = 0; done < Sizes.PredictionCalls; done += block)
        {
            cancellationToken.ThrowIfCancellationRequested();
            for (int i = done; i < done + block; i++)
            {
                long start = Stopwatch.GetTimestamp();
                engine.Predict(inputs[i % distinct]);
                engineTimes.Add(Stopwatch.GetElapsedTime(start).TotalMicroseconds);
            }

            for (int i = done; i < done + block; i++)
            {
                long start = Stopwatch.GetTimestamp();
                bare.Encode(rows[i % distinct]);
                bareTimes.Add(Stopwatch.GetElapsedTime(start).TotalMicroseconds);
            }
        }

        engineTimes.Sort();
        bareTimes.Sort();
        var measure = new PredictionMeasure(engineTimes.Count, Spread.Percentile(engineTimes, 0.5), Spread.Percentile(engineTimes, 0.99),
            Spread.Percentile(bareTimes, 0.5), Spread.Percentile(bareTimes, 0.99));
        Say(string.Create(CultureInfo.InvariantCulture,
            $"PredictionEngine: median {measure.MedianMicroseconds:F1} µs, p99 {measure.P99Microseconds:F1} µs (bare TorchSharp {measure.BareMedianMicroseconds:F1} / {measure.BareP99Microseconds:F1} µs)."));
        return measure;
    }

    /// <summary>
    /// Streamed (MaxInMemoryBytes = 0) against in-memory one-epoch fits, alternated; then one child process per row
    /// count trains a streamed epoch and reports its own peak RSS.
    /// </summary>
    private StreamMeasure MeasureStream(BenchImages images, int rows)
    {
        Say($"Streamed training: {rows:N0} rows, alternating with in-memory ...");
        var inMemory = new List<double>();
        var streamed = new List<double>();
        for (int r = 0; r < 2; r++)
        {
            using (Fit(images, rows, 1, Sizes.BatchSize, long.MaxValue, m => inMemory.Add(m.Seconds)))
            {
            }

            using (Fit(images, rows, 1, Sizes.BatchSize, 0, m => streamed.Add(m.Seconds)))
            {
            }
        }

        var points = new List<RssPoint>();
        (string host, string[] prefix) = ChildProcess.SelfCommand();
        foreach (int count in Sizes.StreamRows)
        {
            var arguments = new List<string>(prefix) { "bench", "--stream-worker", count.ToString(CultureInfo.InvariantCulture) };
            arguments.AddRange(ChildDataArguments());
            ChildResult result = ChildProcess.Run(host, arguments, TimeSpan.FromMinutes(10), cancellationToken);
            string? line = result.Output.Split('\n').LastOrDefault(l => l.TrimStart().StartsWith('{'));
            if (result.ExitCode != 0 || line is null)
            {
                Note($"The streamed-training child for {count:N0} rows failed (exit {result.ExitCode}): {result.Error.Trim()}");
                continue;
            }

            JsonNode reply = JsonNode.Parse(line)!;
            double peak = (double?)reply["peak_rss_mb"] ?? result.PeakRssMegabytes ?? double.NaN;
            points.Add(new RssPoint(count, Math.Max(peak, result.PeakRssMegabytes ?? 0), (double?)reply["epoch_s"] ?? double.NaN,
                (double?)reply["managed_retained_mb"], (double?)reply["managed_committed_mb"], (double?)reply["managed_allocated_mb"]));
            Say(string.Create(CultureInfo.InvariantCulture,
                $"Streamed child, {count:N0} rows: peak RSS {points[^1].PeakRssMegabytes:F0} MB (managed heap: {points[^1].ManagedRetainedMegabytes:F0} MB retained after training, {points[^1].ManagedCommittedMegabytes:F0} MB committed before that collection, {points[^1].ManagedAllocatedMegabytes:F0} MB allocated in all), epoch {points[^1].EpochSeconds:F2} s."));
        }

        var measure = new StreamMeasure(rows, Spread.Of(inMemory), Spread.Of(streamed), Spread.Of(streamed.Zip(inMemory, (s, m) => s / m)).Median, points);
        Say(string.Create(CultureInfo.InvariantCulture,
            $"Streamed epoch {measure.Streamed.Median:F2} s vs in-memory {measure.InMemory.Median:F2} s: {measure.StreamedOverInMemory:F2}x."));
        return measure;
    }

    private IEnumerable<string> ChildDataArguments()
    {
        yield return "--threads";
        yield return Sizes.Threads.ToString(CultureInfo.InvariantCulture);
        yield return "--batch-size";
        yield return Sizes.BatchSize.ToString(CultureInfo.InvariantCulture);
        if (Sizes.Quick)
        {
            yield return "--quick";
        }

        if (settings.Synthetic)
        {
            yield return "--synthetic";
        }
        else if (settings.DataDirectory is not null)
        {
            yield return "--data";
            yield return settings.DataDirectory;
        }
    }

    /// <summary>
    /// A whole <c>vae-ml report</c> (the report configuration, 20 epochs, every figure) as a child, for its peak RSS; in
    /// quick mode a one-epoch report on a few hundred rows, which proves the measurement only.
    /// </summary>
    private MemoryMeasure MeasureReportRun(BenchImages images, double? pytorchPeak)
    {
        if (!settings.MeasureReportRun)
        {
            Note("The peak RSS of a report run was not measured (--skip-report-run).");
            return new MemoryMeasure(null, null, null, pytorchPeak);
        }

        if (images.Source != "MNIST")
        {
            Note("The peak RSS of a report run was not measured: the report needs MNIST.");
            return new MemoryMeasure(null, null, null, pytorchPeak);
        }

        string folder = Path.Combine(Path.GetTempPath(), $"vae-ml-bench-report-{Environment.ProcessId}");
        var reportArguments = new List<string> { "report", "--out", folder };
        if (Sizes.Quick)
        {
            // Proves the measurement, not the memory of the real run.
            reportArguments.AddRange(["--epochs", "1", "--train-limit", Sizes.TrainRows.ToString(CultureInfo.InvariantCulture), "--test-limit", "256"]);
        }

        if (settings.DataDirectory is not null)
        {
            reportArguments.AddRange(["--data", settings.DataDirectory]);
        }

        Say($"Peak RSS of a report run (vae-ml {string.Join(' ', reportArguments)}) as a child process ...");
        (string host, string[] prefix) = ChildProcess.SelfCommand();
        var clock = Stopwatch.StartNew();
        try
        {
            ChildResult result = ChildProcess.Run(host, [.. prefix, .. reportArguments], TimeSpan.FromMinutes(15), cancellationToken);
            if (result.ExitCode != 0)
            {
                Note($"The report run failed (exit {result.ExitCode}): {result.Error.Trim()}");
                return new MemoryMeasure(null, null, null, pytorchPeak);
            }

            Say(string.Create(CultureInfo.InvariantCulture, $"Report run: peak RSS {result.PeakRssMegabytes:F0} MB in {clock.Elapsed.TotalSeconds:F0} s."));
            return new MemoryMeasure(result.PeakRssMegabytes, clock.Elapsed.TotalSeconds, "vae-ml " + string.Join(' ', reportArguments), pytorchPeak);
        }
        finally
        {
            if (Directory.Exists(folder))
            {
                Directory.Delete(folder, recursive: true);
            }
        }
    }

    private static string Describe(EpochMeasure m)
    {
        string torch = m.PyTorch is null ? "PyTorch not run" : string.Create(CultureInfo.InvariantCulture,
            $"PyTorch {m.PyTorch.Median:F2} s ({m.PyTorchOverVaeMl:F2}x Vae.ML)");
        return string.Create(CultureInfo.InvariantCulture,
            $"Epoch, {m.Rows:N0} rows, batch {m.BatchSize}: Vae.ML {m.VaeMl.Median:F2} s [{m.VaeMl.Min:F2}-{m.VaeMl.Max:F2}], {torch}, GEMM floor {m.GemmFloor.Median:F2} s (Vae.ML {m.VaeMlOverFloor:F2}x floor).");
    }

    private static double LoadAverage()
    {
        try
        {
            return double.Parse(File.ReadAllText("/proc/loadavg").Split(' ')[0], CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            return double.NaN;
        }
    }

    private void Say(string line) => context.WriteLine(line);

    private void Note(string line)
    {
        _notes.Add(line);
        Say("note: " + line);
    }

    /// <summary>Synchronous progress sink: the trainer reports on its own thread and waits for it.</summary>
    private sealed class EpochSink(Action<VaeEpochMetrics> report) : IProgress<VaeEpochMetrics>
    {
        public void Report(VaeEpochMetrics value) => report(value);
    }
}
