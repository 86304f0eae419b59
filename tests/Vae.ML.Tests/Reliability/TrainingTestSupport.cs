using Microsoft.ML;
using Vae.ML.Tests.Core;

namespace Vae.ML.Tests.Reliability;

/// <summary>Small, fast training runs and bit-exact comparisons of their results.</summary>
internal static class TrainingTestSupport
{
    public static VaeOptions Options(int epochs = 3, int seed = 7) => new()
    {
        HiddenSizes = [32],
        LatentDimension = 2,
        Epochs = epochs,
        BatchSize = 32,
        Seed = seed,
        Device = "cpu",
    };

    /// <summary>The bytes of a real 2-epoch checkpoint of an 8-3-2 MLP (fast to train), as the trainer writes it.</summary>
    public static byte[] SmallCheckpointBytes()
    {
        var ml = new MLContext(seed: 0);
        var options = Options(epochs: 2);
        options.HiddenSizes = [3];
        options.BatchSize = 8;
        using var folder = new TempFolder();
        options.CheckpointDirectory = folder.Path;
        var rows = SyntheticData.Rows(16, width: 8).Select(r => new NarrowRow { Features = r.Features }).ToArray();
        ml.Transforms.Vae(options).Fit(ml.Data.LoadFromEnumerable(rows)).Dispose();
        return File.ReadAllBytes(folder.File("checkpoint-epoch-0002.safetensors"));
    }

    private sealed class NarrowRow
    {
        [Microsoft.ML.Data.VectorType(8)]
        public float[] Features { get; set; } = [];
    }

    /// <summary>The trained weights by name, copied out of the network.</summary>
    public static Dictionary<string, float[]> Weights(VaeTransformer vae)
        => vae.Model.GetParameters().ToDictionary(p => p.Name, p => p.Values);

    /// <summary>Asserts equal weights bit for bit (NaN patterns and signed zeros included).</summary>
    public static void ShouldHaveIdenticalWeights(this VaeTransformer actual, VaeTransformer expected)
    {
        var a = Weights(actual);
        var e = Weights(expected);
        a.Keys.Should().BeEquivalentTo(e.Keys);
        foreach (var (name, values) in e)
        {
            var bits = a[name].Select(BitConverter.SingleToInt32Bits).ToArray();
            bits.Should().Equal(values.Select(BitConverter.SingleToInt32Bits), $"parameter {name} must be bit-identical");
        }
    }

    /// <summary>
    /// Asserts equal history: every loss bit for bit. Only the wall-clock <see cref="VaeEpochMetrics.Seconds"/> may differ.
    /// </summary>
    public static void ShouldHaveIdenticalHistory(this VaeTransformer actual, VaeTransformer expected)
    {
        actual.History.Select(h => h with { Seconds = 0 }).Should().Equal(expected.History.Select(h => h with { Seconds = 0 }));
    }

    public static IDataView TrainingRows(MLContext ml, int rows = 256, int seed = 1) => SyntheticData.Load(ml, rows, seed);

    public sealed class Reporter<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }

    /// <summary>
    /// Rows of <see cref="SyntheticData"/> that run <paramref name="onRow"/> (enumeration number, row index) before each
    /// row: it may throw, like a failing file, or cancel a token. ML.NET enumerates once per cursor.
    /// </summary>
    public sealed class InstrumentedRows(SyntheticData.Row[] rows, Action<int, int> onRow) : IEnumerable<SyntheticData.Row>
    {
        public int Enumerations { get; private set; }

        public IEnumerator<SyntheticData.Row> GetEnumerator()
        {
            var enumeration = ++Enumerations;
            for (var i = 0; i < rows.Length; i++)
            {
                onRow(enumeration, i);
                yield return rows[i];
            }
        }

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }

    /// <summary>A folder under the temp directory, deleted with everything in it on dispose.</summary>
    public sealed class TempFolder : IDisposable
    {
        public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "vae-ml-training-" + Guid.NewGuid().ToString("N"));

        public string File(string name) => System.IO.Path.Combine(Path, name);

        public string[] FileNames() => Directory.Exists(Path)
            ? Directory.GetFiles(Path).Select(f => System.IO.Path.GetFileName(f)!).Order(StringComparer.Ordinal).ToArray()
            : [];

        public void Dispose()
        {
            if (Directory.Exists(Path))
            {
                Directory.Delete(Path, recursive: true);
            }
        }
    }
}
