using Microsoft.Extensions.Logging;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Vae.ML.Tests.Core;

public class VaePipelineTests
{
    private sealed class SplitRow
    {
        [VectorType(32)]
        public float[] Left { get; set; } = [];

        [VectorType(32)]
        public float[] Right { get; set; } = [];
    }

    private sealed class SplitPrediction
    {
        [VectorType(2)]
        public float[] Latent { get; set; } = [];

        [VectorType(2)]
        public float[] LatentNormalized { get; set; } = [];

        public float Score { get; set; }
    }

    private static VaeOptions Options(int epochs = 1) => new() { HiddenSizes = [16], Epochs = epochs, BatchSize = 32, Seed = 3, Device = "cpu" };

    private static SplitRow[] SplitRows(int count) => SyntheticData.Rows(count)
        .Select(r => new SplitRow { Left = r.Features[..32], Right = r.Features[32..] })
        .ToArray();

    [Fact]
    public void Chains_with_Concatenate_and_NormalizeMinMax_and_serves_a_prediction_engine()
    {
        var ml = new MLContext(seed: 0);
        var rows = SplitRows(300);
        var data = ml.Data.LoadFromEnumerable(rows);
        var pipeline = ml.Transforms.Concatenate("Features", "Left", "Right")
            .Append(ml.Transforms.Vae(Options()))
            .Append(ml.Transforms.NormalizeMinMax("LatentNormalized", "Latent"));

        var model = pipeline.Fit(data);
        var scored = model.Transform(data);
        var normalized = scored.GetColumn<float[]>("LatentNormalized").ToArray();
        // NormalizeMinMax keeps zero fixed by default: each dimension is divided by its largest magnitude.
        normalized.Should().OnlyContain(v => v.Length == 2 && v.All(x => Math.Abs(x) <= 1 + 1e-6));
        normalized.Max(v => Math.Abs(v[0])).Should().BeApproximately(1f, 1e-6f);

        var vae = model.OfType<VaeTransformer>().Single();
        var expected = vae.Encode(rows[5].Left.Concat(rows[5].Right).ToArray());
        using var engine = ml.Model.CreatePredictionEngine<SplitRow, SplitPrediction>(model);
        var prediction = engine.Predict(rows[5]);
        prediction.Latent.Should().Equal(expected);
        prediction.LatentNormalized.Should().Equal(normalized[5], Close); // the engine maps one row, the view a batch
        prediction.Score.Should().BeApproximately(scored.GetColumn<float>("Score").ElementAt(5), 1e-3f);
        vae.Dispose();
    }

    [Fact]
    public void Cursor_computes_only_the_columns_asked_for_and_passes_input_through()
    {
        var ml = new MLContext(seed: 0);
        var data = SyntheticData.Load(ml, 50);
        using var vae = ml.Transforms.Vae(Options()).Fit(data);
        var scored = vae.Transform(data);

        using var cursor = scored.GetRowCursor([scored.Schema["Label"], scored.Schema["Latent"]]);
        cursor.IsColumnActive(scored.Schema["Latent"]).Should().BeTrue();
        cursor.IsColumnActive(scored.Schema["Reconstruction"]).Should().BeFalse();
        var getReconstruction = () => cursor.GetGetter<VBuffer<float>>(scored.Schema["Reconstruction"]);
        getReconstruction.Should().Throw<InvalidOperationException>().WithMessage("*'Reconstruction' was not requested*");
        var wrongType = () => cursor.GetGetter<float>(scored.Schema["Latent"]);
        wrongType.Should().Throw<InvalidOperationException>().WithMessage("*vector of Single*");

        var label = cursor.GetGetter<uint>(scored.Schema["Label"]);
        var latent = cursor.GetGetter<VBuffer<float>>(scored.Schema["Latent"]);
        var labels = new List<uint>();
        var value = default(VBuffer<float>);
        uint l = 0;
        while (cursor.MoveNext())
        {
            label(ref l);
            labels.Add(l);
            if (cursor.Position % 7 == 0)
            {
                latent(ref value); // read only some rows: batching must still line up
                // One row alone goes through another BLAS kernel than a batch: equal up to float rounding.
                value.DenseValues().Should().Equal(vae.Encode(SyntheticData.Rows(50)[cursor.Position].Features), Close);
            }
        }

        labels.Should().Equal(SyntheticData.Rows(50).Select(r => r.Label));
    }

    [Fact]
    public void Shuffled_cursors_stay_aligned_with_their_rows()
    {
        var ml = new MLContext(seed: 0);
        var rows = SyntheticData.Rows(3000);
        var data = ml.Data.ShuffleRows(ml.Data.LoadFromEnumerable(rows), seed: 5);
        using var vae = ml.Transforms.Vae(Options()).Fit(data);
        var scored = vae.Transform(ml.Data.LoadFromEnumerable(rows));

        using var cursor = scored.GetRowCursor(scored.Schema, new Random(42));
        var features = cursor.GetGetter<VBuffer<float>>(scored.Schema["Features"]);
        var latent = cursor.GetGetter<VBuffer<float>>(scored.Schema["Latent"]);
        VBuffer<float> f = default, z = default;
        var checkedRows = 0;
        while (cursor.MoveNext() && checkedRows < 1500)
        {
            features(ref f);
            latent(ref z);
            z.DenseValues().Should().Equal(vae.Encode(f.DenseValues().ToArray()), Close);
            checkedRows++;
        }

        checkedRows.Should().Be(1500);
    }

    [Fact]
    public void Cancellation_stops_training_at_a_batch_boundary()
    {
        var ml = new MLContext(seed: 0);
        using var cts = new CancellationTokenSource();
        var options = Options(epochs: 50);
        var epochs = 0;
        options.Progress = new Reporter(_ =>
        {
            if (++epochs == 2)
            {
                cts.Cancel();
            }
        });

        var fit = () => ml.Transforms.Vae(options).Fit(SyntheticData.Load(ml, 256), cts.Token);

        fit.Should().Throw<OperationCanceledException>();
        epochs.Should().Be(2);

        options = Options(epochs: 5);
        options.CancellationToken = new CancellationToken(canceled: true);
        ((Action)(() => ml.Transforms.Vae(options).Fit(SyntheticData.Load(ml, 64)))).Should().Throw<OperationCanceledException>();
    }

    [Fact]
    public void Cancelling_the_MLContext_stops_training_too()
    {
        var ml = new MLContext(seed: 0);
        var options = Options(epochs: 50);
        var epochs = 0;
        options.Progress = new Reporter(_ =>
        {
            if (++epochs == 1)
            {
                Vae.ML.Internals.MlNetInternals.CancelExecution(ml);
            }
        });

        var fit = () => ml.Transforms.Vae(options).Fit(SyntheticData.Load(ml, 128));

        fit.Should().Throw<OperationCanceledException>().WithMessage("*MLContext*");
        epochs.Should().Be(1);
    }

    [Fact]
    public void Epochs_are_logged_to_the_ILogger_and_to_MLContext_Log()
    {
        var ml = new MLContext(seed: 0);
        var mlMessages = new List<string>();
        ml.Log += (_, e) =>
        {
            if (e.Message.Contains("Epoch", StringComparison.Ordinal))
            {
                lock (mlMessages)
                {
                    mlMessages.Add(e.Message);
                }
            }
        };
        var logger = new ListLogger();
        var options = Options(epochs: 3);
        options.Logger = logger;

        using var vae = ml.Transforms.Vae(options).Fit(SyntheticData.Load(ml, 64));

        logger.Messages.Where(m => m.StartsWith("Epoch ", StringComparison.Ordinal)).Should().HaveCount(3);
        logger.Messages.Should().Contain(m => m.StartsWith("Epoch 3/3: train loss", StringComparison.Ordinal));
        mlMessages.Should().HaveCount(3).And.Contain(m => m.Contains("Epoch 1/3", StringComparison.Ordinal));
    }

    private static bool Close(float a, float b) => Math.Abs(a - b) <= 1e-5f * Math.Max(1f, Math.Abs(b));

    private sealed class Reporter(Action<VaeEpochMetrics> report) : IProgress<VaeEpochMetrics>
    {
        public void Report(VaeEpochMetrics value) => report(value);
    }

    private sealed class ListLogger : ILogger
    {
        public List<string> Messages { get; } = [];

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            => Messages.Add(formatter(state, exception));
    }
}
