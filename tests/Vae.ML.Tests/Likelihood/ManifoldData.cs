using Microsoft.ML;
using Microsoft.ML.Data;

namespace Vae.ML.Tests.Likelihood;

/// <summary>
/// Real-valued rows with a known structure: a 2-D curved manifold x = A·φ(t) + b + noise in 20-D, t uniform in
/// [−2, 2]², each feature on its own scale (0.01 to 1000) and offset, so values are negative and positive and far
/// outside [0, 1]. Outliers leave the manifold: one feature pushed 6 of its standard deviations away.
/// </summary>
internal static class ManifoldData
{
    public const int Width = 20;

    public sealed class Row
    {
        [VectorType(Width)]
        public float[] Features { get; set; } = [];

        public float T1 { get; set; }

        public float T2 { get; set; }

        public bool Outlier { get; set; }
    }

    private static readonly double[,] Mixing = MakeMixing();

    /// <summary>Scale of feature i: 10^(−2 + 5i/19), from 0.01 to 1000.</summary>
    public static double Scale(int feature) => Math.Pow(10, -2 + 5.0 * feature / (Width - 1));

    private static double[,] MakeMixing()
    {
        var random = new Random(1234);
        var a = new double[Width, 4];
        for (var i = 0; i < Width; i++)
        {
            for (var j = 0; j < 4; j++)
            {
                a[i, j] = random.NextDouble() * 2 - 1;
            }
        }

        return a;
    }

    public static Row[] Rows(int count, int seed, int outliers = 0, double noise = 0.05, double scaleAll = 1)
    {
        var random = new Random(seed);
        var rows = new Row[count];
        for (var r = 0; r < count; r++)
        {
            var t1 = random.NextDouble() * 4 - 2;
            var t2 = random.NextDouble() * 4 - 2;
            double[] phi = [t1, t2, Math.Sin(1.5 * t1), t1 * t2 / 2];
            var x = new float[Width];
            for (var i = 0; i < Width; i++)
            {
                var value = (i % 3 - 1) * 2.5; // offset: −2.5, 0 or 2.5 units
                for (var j = 0; j < 4; j++)
                {
                    value += Mixing[i, j] * phi[j];
                }

                value += noise * Gaussian(random);
                x[i] = (float)(value * Scale(i) * scaleAll);
            }

            rows[r] = new Row { Features = x, T1 = (float)t1, T2 = (float)t2 };
        }

        for (var r = 0; r < outliers; r++)
        {
            var row = rows[count - 1 - r];
            var feature = random.Next(Width);
            var sign = random.Next(2) == 0 ? -1 : 1;
            row.Features[feature] += (float)(sign * 6 * 1.2 * Scale(feature) * scaleAll);
            row.Outlier = true;
        }

        return rows;
    }

    public static IDataView Load(MLContext ml, Row[] rows) => ml.Data.LoadFromEnumerable(rows);

    public static float[] Matrix(Row[] rows) => rows.SelectMany(r => r.Features).ToArray();

    public static VaeOptions Options(int epochs = 40, int seed = 3) => new()
    {
        Likelihood = VaeLikelihood.Gaussian,
        HiddenSizes = [32],
        LatentDimension = 2,
        Epochs = epochs,
        BatchSize = 32,
        LearningRate = 3e-3,
        Seed = seed,
        Device = "cpu",
    };

    private static double Gaussian(Random random)
        => Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
}
