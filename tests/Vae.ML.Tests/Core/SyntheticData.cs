using Microsoft.ML;
using Microsoft.ML.Data;

namespace Vae.ML.Tests.Core;

/// <summary>Small "images": noisy copies of a few random prototypes, values in [0, 1].</summary>
public static class SyntheticData
{
    public const int Width = 64;

    public sealed class Row
    {
        [VectorType(Width)]
        public float[] Features { get; set; } = [];

        public uint Label { get; set; }
    }

    public static Row[] Rows(int count, int seed = 1, int width = Width)
    {
        var random = new Random(seed);
        var prototypes = Enumerable.Range(0, 4)
            .Select(_ => Enumerable.Range(0, width).Select(_ => random.NextDouble() < 0.3 ? 0.9f : 0.05f).ToArray())
            .ToArray();
        return Enumerable.Range(0, count).Select(i =>
        {
            var label = (uint)(i % prototypes.Length);
            var features = prototypes[label].Select(v => Math.Clamp(v + (float)(random.NextDouble() - 0.5) * 0.1f, 0f, 1f)).ToArray();
            return new Row { Features = features, Label = label };
        }).ToArray();
    }

    public static IDataView Load(MLContext ml, int count, int seed = 1) => ml.Data.LoadFromEnumerable(Rows(count, seed));

    /// <summary>Row-major matrix of the first <paramref name="count"/> rows.</summary>
    public static float[] Matrix(IEnumerable<Row> rows) => rows.SelectMany(r => r.Features).ToArray();
}
