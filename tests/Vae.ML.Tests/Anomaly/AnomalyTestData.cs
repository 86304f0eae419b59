using Microsoft.ML;
using Microsoft.ML.Data;

namespace Vae.ML.Tests.Anomaly;

/// <summary>
/// A small labelled anomaly set in [0, 1]: normal rows are noisy copies of two prototypes, anomalies are noisy copies
/// of two other prototypes the detector never sees in training.
/// </summary>
internal static class AnomalyTestData
{
    public const int Width = 16;

    public sealed class Row
    {
        [VectorType(Width)]
        public float[] Features { get; set; } = [];

        /// <summary>
        /// 1 for an anomaly, 0 for a normal row: <c>mlContext.AnomalyDetection.Evaluate</c> wants Single (or a key of
        /// cardinality 2) and rejects Boolean.
        /// </summary>
        public float Label { get; set; }
    }

    /// <summary>Rows of a single vector column, as a fresh process reading only the model's input schema builds them.</summary>
    public sealed class FeaturesOnly
    {
        [VectorType(Width)]
        public float[] Features { get; set; } = [];
    }

    public sealed class Prediction
    {
        public float Score { get; set; }

        public bool PredictedLabel { get; set; }
    }

    public static Row[] Rows(int normal, int anomalies, int seed)
    {
        var prototypes = new Random(7);
        var shapes = Enumerable.Range(0, 4)
            .Select(_ => Enumerable.Range(0, Width).Select(_ => prototypes.NextDouble() < 0.5 ? 0.85f : 0.15f).ToArray())
            .ToArray();
        var random = new Random(seed);
        Row Make(int shape, float label) => new()
        {
            Features = shapes[shape].Select(v => Math.Clamp(v + (float)(random.NextDouble() - 0.5) * 0.2f, 0f, 1f)).ToArray(),
            Label = label,
        };

        return Enumerable.Range(0, normal).Select(i => Make(i % 2, 0))
            .Concat(Enumerable.Range(0, anomalies).Select(i => Make(2 + i % 2, 1)))
            .ToArray();
    }

    public static VaeOptions SmallOptions() => new()
    {
        HiddenSizes = [32],
        LatentDimension = 2,
        Epochs = 30,
        BatchSize = 32,
        Seed = 3,
        Device = "cpu",
    };

    public static IDataView Load(MLContext ml, Row[] rows) => ml.Data.LoadFromEnumerable(rows);
}
