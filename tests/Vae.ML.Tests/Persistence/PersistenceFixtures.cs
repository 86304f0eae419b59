using Microsoft.ML;
using Vae.ML.Tests.Core;

namespace Vae.ML.Tests.Persistence;

/// <summary>Small trained models and scratch directories for the persistence tests.</summary>
internal static class PersistenceFixtures
{
    public static VaeOptions SmallOptions(int[]? hiddenSizes = null) => new()
    {
        HiddenSizes = hiddenSizes ?? [32],
        LatentDimension = 3,
        Epochs = 2,
        BatchSize = 32,
        Beta = 0.75,
        Seed = 5,
        Device = "cpu",
        FeatureColumnName = "Features",
        LatentColumnName = "Z",
        ScoreColumnName = "Anomaly",
    };

    public static VaeTransformer Train(MLContext ml, VaeOptions? options = null, int rows = 256)
        => ml.Transforms.Vae(options ?? SmallOptions()).Fit(SyntheticData.Load(ml, rows));

    public static float[] Probe(int rows = 40) => SyntheticData.Matrix(SyntheticData.Rows(rows, seed: 3));

    /// <summary>Every output of the array API on <paramref name="inputs"/>, for bit-for-bit comparisons.</summary>
    public static float[][] Outputs(VaeTransformer vae, float[] inputs)
    {
        var mu = vae.Encode(inputs, out var logVariances);
        return [mu, logVariances, vae.Reconstruct(inputs), vae.Score(inputs), vae.Decode(mu), vae.Sample(5, seed: 1)];
    }

    public static void ShouldBeBitwiseEqual(float[][] actual, float[][] expected)
    {
        actual.Should().HaveSameCount(expected);
        for (var i = 0; i < expected.Length; i++)
        {
            actual[i].Select(BitConverter.SingleToUInt32Bits).Should().Equal(expected[i].Select(BitConverter.SingleToUInt32Bits), $"output {i} must survive bit for bit");
        }
    }
}

/// <summary>A fresh directory under the temp folder, deleted on dispose.</summary>
internal sealed class ScratchDirectory : IDisposable
{
    public ScratchDirectory() => Directory.CreateDirectory(Path);

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "vae-ml-tests-" + Guid.NewGuid().ToString("N"));

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>A write-only stream that fails after a given number of bytes, like a disk that fills up.</summary>
internal sealed class FailingStream(Stream inner, long failAfterBytes) : Stream
{
    private long _written;

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => _written; set => throw new NotSupportedException(); }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        if (_written + buffer.Length > failAfterBytes)
        {
            var fits = (int)(failAfterBytes - _written);
            inner.Write(buffer[..fits]);
            _written += fits;
            throw new IOException("No space left on device (simulated).");
        }

        inner.Write(buffer);
        _written += buffer.Length;
    }

    public override void Flush() => inner.Flush();

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();
}
