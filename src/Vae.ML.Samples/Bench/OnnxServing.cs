using System.Diagnostics;
using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.Transforms.Onnx;
using Vae.ML.Samples.Onnx;

namespace Vae.ML.Samples.Bench;

/// <summary>
/// Serving a trained VAE through its ONNX export next to libtorch, in the same run and interleaved: one-row
/// <c>PredictionEngine</c> latency (all four columns: Latent, LatentLogVariance, Reconstruction, Score) of
/// <c>vae.Transform</c> and of <c>ApplyOnnxModel</c>, and batch scoring throughput of both through an
/// <see cref="IDataView"/> cursor and of raw ONNX Runtime on batches of <see cref="OnnxServingSizes.RuntimeBatch"/> rows.
/// </summary>
/// <param name="Threads">Intra-op threads of libtorch and of ONNX Runtime.</param>
/// <param name="Calls">PredictionEngine calls per contender.</param>
/// <param name="Rows">Rows of each batch-scoring pass.</param>
/// <param name="TorchEngine">libtorch PredictionEngine latency, µs: median and p99.</param>
/// <param name="OnnxEngine">ApplyOnnxModel PredictionEngine latency, µs: median and p99.</param>
/// <param name="TorchTransformRowsPerSecond">vae.Transform + cursor over every output column.</param>
/// <param name="OnnxTransformRowsPerSecond">ApplyOnnxModel + cursor over every output column (ML.NET runs ONNX Runtime one row at a time).</param>
/// <param name="OnnxRuntimeRowsPerSecond">InferenceSession.Run on batches of rows, every output.</param>
/// <param name="WorstRelativeError">Largest disagreement of the ONNX outputs with libtorch's over the rows (see <see cref="OnnxAgreement"/>).</param>
internal sealed record OnnxServingMeasure(int Threads, int Calls, int Rows, Latency TorchEngine, Latency OnnxEngine,
    Spread TorchTransformRowsPerSecond, Spread OnnxTransformRowsPerSecond, Spread OnnxRuntimeRowsPerSecond, double WorstRelativeError)
{
    /// <summary>One table of the measure, in Markdown.</summary>
    public string Table()
    {
        var c = CultureInfo.InvariantCulture;
        return string.Join(Environment.NewLine,
            $"| Path ({Threads} threads) | PredictionEngine median / p99 (µs, {Calls:N0} calls) | Batch scoring, rows/s ({Rows:N0} rows, median [min–max]) |",
            "|---|---|---|",
            string.Create(c, $"| libtorch: `vae.Transform` | {TorchEngine.Median:F1} / {TorchEngine.P99:F1} | {Format(TorchTransformRowsPerSecond)} |"),
            string.Create(c, $"| ONNX: `ApplyOnnxModel` | {OnnxEngine.Median:F1} / {OnnxEngine.P99:F1} | {Format(OnnxTransformRowsPerSecond)} |"),
            string.Create(c, $"| ONNX Runtime, batches of {OnnxServingSizes.RuntimeBatch} | – | {Format(OnnxRuntimeRowsPerSecond)} |"),
            "",
            string.Create(c, $"Worst relative disagreement of the ONNX outputs with libtorch's: {WorstRelativeError:E1} (|a − b| / max(|a|, |b|, floor), see docs/onnx.md)."));
    }

    private static string Format(Spread s) => string.Create(CultureInfo.InvariantCulture, $"{s.Median:N0} [{s.Min:N0}–{s.Max:N0}]");
}

/// <summary>Median and 99th percentile of one-row latencies, in microseconds.</summary>
internal sealed record Latency(double Median, double P99);

/// <summary>How much the serving measure does.</summary>
/// <param name="Calls">PredictionEngine calls per path (alternating in blocks of 100).</param>
/// <param name="Rows">Rows of each batch-scoring pass.</param>
/// <param name="Repeats">Batch-scoring passes per path (alternating).</param>
internal sealed record OnnxServingSizes(int Calls, int Rows, int Repeats)
{
    /// <summary>The bench's sizes: its PredictionEngine calls, 10,000 rows (quick: 1,000), 3 passes (quick: 2).</summary>
    public static OnnxServingSizes For(BenchSizes sizes) => new(sizes.PredictionCalls, sizes.Quick ? 1_000 : 10_000, sizes.Quick ? 2 : 3);

    /// <summary>Rows per InferenceSession.Run call of the raw ONNX Runtime path.</summary>
    public const int RuntimeBatch = 1024;
}

/// <summary>Runs the <see cref="OnnxServingMeasure"/>.</summary>
internal static class OnnxServing
{
    /// <summary>
    /// Exports <paramref name="model"/> to <paramref name="onnxPath"/> and measures both paths on <paramref name="rows"/>
    /// (row-major, <see cref="VaeTransformer.InputSize"/> values per row; the model's feature column must be "Features").
    /// </summary>
    public static OnnxServingMeasure Measure(VaeTransformer model, string onnxPath, float[] rows, OnnxServingSizes sizes, int threads, Action<string> say,
        CancellationToken cancellationToken)
    {
        int width = model.InputSize;
        if (sizes.Calls < 1 || sizes.Rows < 1 || sizes.Repeats < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(sizes), sizes, "The ONNX serving measure needs at least one call, one row and one repeat.");
        }

        if (model.FeatureColumnName != Datasets.Mnist.FeaturesColumnName || rows.Length == 0 || rows.Length % width != 0)
        {
            throw new ArgumentException(
                $"The ONNX serving measure needs a model whose feature column is '{Datasets.Mnist.FeaturesColumnName}' and whole rows of {width} values.", nameof(model));
        }

        int torchThreadsBefore = TorchSharp.torch.get_num_threads();
        TorchSharp.torch.set_num_threads(threads);
        try
        {
            return Measure(model, onnxPath, rows, width, sizes, threads, say, cancellationToken);
        }
        finally
        {
            TorchSharp.torch.set_num_threads(torchThreadsBefore);
        }
    }

    private static OnnxServingMeasure Measure(VaeTransformer model, string onnxPath, float[] rows, int width, OnnxServingSizes sizes, int threads,
        Action<string> say, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(onnxPath))!);
        model.ExportOnnx(onnxPath);
        long bytes = new FileInfo(onnxPath).Length;

        var ml = new MLContext(seed: 0);
        var batchView = new CyclingImagesView(rows, width, sizes.Rows);
        using OnnxTransformer onnxTransformer = ml.Transforms.ApplyOnnxModel(new OnnxOptions
        {
            ModelFile = onnxPath, InputColumns = [model.FeatureColumnName], OutputColumns = OutputColumns(model), IntraOpNumThreads = threads, InterOpNumThreads = 1,
        }).Fit(batchView);
        using var sessionOptions = new SessionOptions { IntraOpNumThreads = threads, InterOpNumThreads = 1 };
        using var session = new InferenceSession(onnxPath, sessionOptions);

        // Agreement first: the timings below mean nothing if the paths compute different things.
        int checkRows = Math.Min(rows.Length / width, 2000);
        float[] checkInputs = rows.AsSpan(0, checkRows * width).ToArray();
        double worst = OnnxAgreement.Compare(model, session, checkInputs, OnnxServingSizes.RuntimeBatch).Values.Max();
        say(string.Create(CultureInfo.InvariantCulture, $"ONNX export: {bytes / 1024.0:N0} KiB; worst relative disagreement with libtorch over {checkRows:N0} rows {worst:E1}."));

        (Latency torchEngine, Latency onnxEngine) = MeasureEngines(ml, model, onnxTransformer, rows, sizes.Calls, cancellationToken);
        say(string.Create(CultureInfo.InvariantCulture,
            $"PredictionEngine (all columns): libtorch median {torchEngine.Median:F1} µs, p99 {torchEngine.P99:F1} µs; ONNX median {onnxEngine.Median:F1} µs, p99 {onnxEngine.P99:F1} µs."));

        var torchRates = new List<double>();
        var onnxRates = new List<double>();
        var runtimeRates = new List<double>();
        ReadAll(model.Transform(batchView), model);
        ReadAll(onnxTransformer.Transform(batchView), model);
        for (int r = 0; r < sizes.Repeats; r++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            torchRates.Add(Rate(() => ReadAll(model.Transform(batchView), model)));
            onnxRates.Add(Rate(() => ReadAll(onnxTransformer.Transform(batchView), model)));
            runtimeRates.Add(Rate(() => RunBatches(session, rows, width, sizes.Rows)));
        }

        var measure = new OnnxServingMeasure(threads, sizes.Calls, sizes.Rows, torchEngine, onnxEngine,
            Spread.Of(torchRates), Spread.Of(onnxRates), Spread.Of(runtimeRates), worst);
        say(string.Create(CultureInfo.InvariantCulture,
            $"Batch scoring {sizes.Rows:N0} rows: libtorch Transform {measure.TorchTransformRowsPerSecond.Median:N0} rows/s, ApplyOnnxModel " +
            $"{measure.OnnxTransformRowsPerSecond.Median:N0} rows/s, ONNX Runtime batches {measure.OnnxRuntimeRowsPerSecond.Median:N0} rows/s."));
        return measure;
    }

    private static string[] OutputColumns(VaeTransformer model)
        => [model.LatentColumnName, model.LatentLogVarianceColumnName, model.ReconstructionColumnName, model.ScoreColumnName];

    /// <summary>libtorch's and ONNX's PredictionEngine, alternating in blocks of 100 calls after a warm-up.</summary>
    private static (Latency Torch, Latency Onnx) MeasureEngines(MLContext ml, VaeTransformer model, ITransformer onnx, float[] rows, int calls,
        CancellationToken cancellationToken)
    {
        int width = model.InputSize;
        SchemaDefinition input = SchemaDefinition.Create(typeof(ImageInput));
        input[nameof(ImageInput.Features)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, width);
        // OwnsTransformer = false: disposing an engine must not dispose the VAE, which the batch measure still uses.
        using var torchEngine = ml.Model.CreatePredictionEngine<ImageInput, ServedRow>(model,
            new PredictionEngineOptions { InputSchemaDefinition = input, OutputSchemaDefinition = Output<ServedRow>(model), OwnsTransformer = false });
        using var onnxEngine = ml.Model.CreatePredictionEngine<ImageInput, OnnxServedRow>(onnx,
            new PredictionEngineOptions { InputSchemaDefinition = input, OutputSchemaDefinition = Output<OnnxServedRow>(model), OwnsTransformer = false });

        int distinct = Math.Min(1000, rows.Length / width);
        var inputs = Enumerable.Range(0, distinct).Select(i => new ImageInput { Features = rows.AsSpan(i * width, width).ToArray() }).ToArray();
        for (int i = 0; i < Math.Min(500, calls); i++)
        {
            torchEngine.Predict(inputs[i % distinct]);
            onnxEngine.Predict(inputs[i % distinct]);
        }

        var torchTimes = new List<double>(calls);
        var onnxTimes = new List<double>(calls);
        const int block = 100;
        for (int done = 0; done < calls; done += block)
        {
            cancellationToken.ThrowIfCancellationRequested();
            for (int i = done; i < done + block; i++)
            {
                long start = Stopwatch.GetTimestamp();
                torchEngine.Predict(inputs[i % distinct]);
                torchTimes.Add(Stopwatch.GetElapsedTime(start).TotalMicroseconds);
            }

            for (int i = done; i < done + block; i++)
            {
                long start = Stopwatch.GetTimestamp();
                onnxEngine.Predict(inputs[i % distinct]);
                onnxTimes.Add(Stopwatch.GetElapsedTime(start).TotalMicroseconds);
            }
        }

        torchTimes.Sort();
        onnxTimes.Sort();
        return (new Latency(Spread.Percentile(torchTimes, 0.5), Spread.Percentile(torchTimes, 0.99)),
            new Latency(Spread.Percentile(onnxTimes, 0.5), Spread.Percentile(onnxTimes, 0.99)));
    }

    /// <summary>The output classes' columns renamed to the model's column names, with their vector sizes.</summary>
    private static SchemaDefinition Output<T>(VaeTransformer model)
    {
        SchemaDefinition output = SchemaDefinition.Create(typeof(T));
        output[nameof(ServedRow.Latent)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, model.LatentDimension);
        output[nameof(ServedRow.LatentLogVariance)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, model.LatentDimension);
        output[nameof(ServedRow.Reconstruction)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, model.InputSize);
        if (typeof(T) == typeof(OnnxServedRow))
        {
            output[nameof(ServedRow.Score)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, 1);
        }

        // Renamed last: the definition's indexer finds a column by its current name.
        output[nameof(ServedRow.Latent)].ColumnName = model.LatentColumnName;
        output[nameof(ServedRow.LatentLogVariance)].ColumnName = model.LatentLogVarianceColumnName;
        output[nameof(ServedRow.Reconstruction)].ColumnName = model.ReconstructionColumnName;
        output[nameof(ServedRow.Score)].ColumnName = model.ScoreColumnName;

        return output;
    }

    private static double Rate(Func<long> pass)
    {
        long start = Stopwatch.GetTimestamp();
        long rows = pass();
        return rows / Stopwatch.GetElapsedTime(start).TotalSeconds;
    }

    /// <summary>Reads every output column of every row, as a scoring job that keeps all of them would.</summary>
    private static long ReadAll(IDataView scored, VaeTransformer model)
    {
        DataViewSchema.Column[] columns = [.. new[] { model.LatentColumnName, model.LatentLogVarianceColumnName, model.ReconstructionColumnName }.Select(n => scored.Schema[n])];
        DataViewSchema.Column score = scored.Schema[model.ScoreColumnName];
        using DataViewRowCursor cursor = scored.GetRowCursor([.. columns, score]);
        ValueGetter<VBuffer<float>>[] getters = columns.Select(c => cursor.GetGetter<VBuffer<float>>(c)).ToArray();
        Action readScore = score.Type is VectorDataViewType ? ReadVector(cursor.GetGetter<VBuffer<float>>(score)) : ReadScalar(cursor.GetGetter<float>(score));
        VBuffer<float> value = default;
        long count = 0;
        while (cursor.MoveNext())
        {
            foreach (ValueGetter<VBuffer<float>> getter in getters)
            {
                getter(ref value);
            }

            readScore();
            count++;
        }

        return count;

        static Action ReadVector(ValueGetter<VBuffer<float>> getter)
        {
            VBuffer<float> buffer = default;
            return () => getter(ref buffer);
        }

        static Action ReadScalar(ValueGetter<float> getter)
        {
            float value = 0;
            return () => getter(ref value);
        }
    }

    /// <summary>Raw ONNX Runtime: <paramref name="count"/> rows cycled from <paramref name="rows"/>, in batches, every output.</summary>
    private static long RunBatches(InferenceSession session, float[] rows, int width, int count)
    {
        int available = rows.Length / width;
        int batch = Math.Min(OnnxServingSizes.RuntimeBatch, available);
        using var runOptions = new RunOptions();
        long done = 0;
        while (done < count)
        {
            int n = (int)Math.Min(batch, count - done);
            int first = (int)(done % available);
            if (first + n > available)
            {
                first = 0;
            }

            var memory = new Memory<float>(rows, first * width, n * width);
            using var input = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, memory, [n, width]);
            using var results = session.Run(runOptions, [session.InputNames[0]], [input], session.OutputNames);
            done += n;
        }

        return done;
    }
}

/// <summary>PredictionEngine output of the libtorch path: the transformer's four columns.</summary>
internal class ServedRow
{
    /// <summary>μ.</summary>
    public float[] Latent { get; set; } = [];

    /// <summary>log σ².</summary>
    public float[] LatentLogVariance { get; set; } = [];

    /// <summary>decoder(μ).</summary>
    public float[] Reconstruction { get; set; } = [];

    /// <summary>The per-row score.</summary>
    public float Score { get; set; }
}

/// <summary>PredictionEngine output of the ONNX path: ApplyOnnxModel gives the score as a one-value vector.</summary>
internal sealed class OnnxServedRow
{
    /// <summary>μ.</summary>
    public float[] Latent { get; set; } = [];

    /// <summary>log σ².</summary>
    public float[] LatentLogVariance { get; set; } = [];

    /// <summary>decoder(μ).</summary>
    public float[] Reconstruction { get; set; } = [];

    /// <summary>The per-row score, one value.</summary>
    public float[] Score { get; set; } = [];
}
