using Microsoft.ML;
using Microsoft.ML.Data;
using Vae.ML.Persistence;
using Vae.ML.Tests.Core;
using Vae.ML.Tests.Persistence;

namespace Vae.ML.Tests.Reliability;

/// <summary>
/// Every save path fails at every k-th byte (a stream that throws, as a full disk does): the previous file stays
/// byte-for-byte as it was and loadable, no temporary file is left, and the error is an IOException naming the file.
/// </summary>
public class SaveFaultTests
{
    /// <summary>Faults per save path; the byte positions spread evenly over the whole write.</summary>
    private const int Faults = 60;

    private sealed class PixelRow
    {
        [VectorType(16)]
        public float[] Pixels { get; set; } = [];
    }

    public static TheoryData<string> SavePaths() => new() { "Save", "ExportSafetensors", "Model.SaveAtomically", "checkpoint" };

    [Theory]
    [MemberData(nameof(SavePaths))]
    public void A_write_that_fails_at_any_byte_keeps_the_previous_file(string savePath)
    {
        var ml = new MLContext(seed: 0);
        var rows = SyntheticData.Rows(64, seed: 2, width: 16).Select(r => new PixelRow { Pixels = r.Features }).ToArray();
        var data = ml.Data.LoadFromEnumerable(rows);
        using var scratch = new ScratchDirectory();
        var path = scratch.File("model.file");
        var (first, firstChain) = Train(ml, data, seed: 1);
        var (second, secondChain) = Train(ml, data, seed: 2);
        Action<VaeTransformer, ITransformer> save = savePath switch
        {
            "Save" => (vae, _) => vae.Save(path),
            "ExportSafetensors" => (vae, _) => vae.ExportSafetensors(path),
            "Model.SaveAtomically" => (_, chain) => ml.Model.SaveAtomically(chain, data.Schema, path),
            // How a checkpoint is written: the model plus optimizer and generator state, through AtomicFile.
            _ => (vae, _) => AtomicFile.Write(path, stream => VaeModelFormat.Write(stream, VaeSnapshot.Of(vae), new VaeFileExtras(
                new Dictionary<string, string> { ["epoch"] = "2" },
                [Safetensors.RawTensor.Float32("optimizer.state", [64], new float[64]), new Safetensors.RawTensor("generator.cpu", "U8", [16], new byte[16])]))),
        };
        float[] LoadPipeline()
        {
            var loaded = ml.Model.Load(path, out _);
            var z = loaded.Transform(ml.Data.LoadFromEnumerable(rows.Take(3))).GetColumn<float[]>("Z").SelectMany(v => v).ToArray();
            ((IEnumerable<ITransformer>)loaded).OfType<IDisposable>().ToList().ForEach(d => d.Dispose());
            return z;
        }
        float[] LoadCheckpoint()
        {
            var bytes = File.ReadAllBytes(path);
            using var vae = VaeModelFormat.Read(new MemoryStream(bytes), path, bytes.Length, ["optimizer.", "generator."]).Snapshot.ToTransformer(ml, "cpu");
            return vae.Encode(Probe(rows));
        }
        float[] LoadModel()
        {
            using var vae = VaeTransformer.Load(ml, path, "cpu");
            return vae.Encode(Probe(rows));
        }
        Func<float[]> load = savePath switch
        {
            "Model.SaveAtomically" => LoadPipeline,
            "checkpoint" => LoadCheckpoint,
            _ => LoadModel,
        };

        save(first, firstChain);
        var before = File.ReadAllBytes(path);
        var expected = load();
        expected.Should().Equal(first.Encode(Probe(rows)), "the first model is on disk");
        long total;
        using (var measure = new MemoryStream())
        {
            using (AtomicFile.InterceptStreams(s => new CountingStream(s, measure)))
            {
                save(second, secondChain);
            }

            total = measure.Length;
            save(first, firstChain);
            before = File.ReadAllBytes(path); // the re-save may stamp another zip time (2 s resolution)
        }

        // The re-save above wrote the first model again: zips carry a write time (2 s resolution), so compare with it.
        before = File.ReadAllBytes(path);

        total.Should().BeGreaterThan(before.Length / 2, "the counting stream saw the whole write");
        for (var fault = 0; fault < Faults; fault++)
        {
            var failAt = total * fault / Faults;
            using (AtomicFile.InterceptStreams(s => new FailingStream(s, failAt)))
            {
                var attempt = () => save(second, secondChain);
                attempt.Should().Throw<IOException>($"the write fails at byte {failAt} of {total}")
                    .Which.Message.Should().Contain(Path.GetFullPath(path), "a full disk names the file");
            }

            File.ReadAllBytes(path).Should().Equal(before, $"a write failing at byte {failAt} leaves the previous file");
            Directory.GetFiles(scratch.Path).Should().Equal([path], "no temporary file is left behind");
        }

        load().Should().Equal(expected, "the previous file still loads");
        save(second, secondChain);
        load().Should().Equal(second.Encode(Probe(rows)), "without a fault the save replaces the file");
        first.Dispose();
        second.Dispose();
    }

    [Fact]
    public void A_full_disk_is_an_IOException_with_the_path()
    {
        var ml = new MLContext(seed: 0);
        using var vae = PersistenceFixtures.Train(ml, PersistenceFixtures.SmallOptions([8]), rows: 64);
        using var scratch = new ScratchDirectory();
        var path = scratch.File("model.safetensors");
        using (AtomicFile.InterceptStreams(s => new FailingStream(s, 1000)))
        {
            FluentActions.Invoking(() => vae.Save(path)).Should().Throw<IOException>()
                .WithMessage($"Could not save '{Path.GetFullPath(path)}' (No space left on device (simulated).); any previous file there is unchanged.")
                .WithInnerException<IOException>();
        }

        File.Exists(path).Should().BeFalse();
        Directory.GetFiles(scratch.Path).Should().BeEmpty();
    }

    private static float[] Probe(PixelRow[] rows) => rows.Take(3).SelectMany(r => r.Pixels).ToArray();

    private static (VaeTransformer Vae, ITransformer Chain) Train(MLContext ml, IDataView data, int seed)
    {
        var options = new VaeOptions
        {
            HiddenSizes = [8], LatentDimension = 2, Epochs = 1, BatchSize = 32, Seed = seed, Device = "cpu",
            FeatureColumnName = "Features", LatentColumnName = "Z",
        };
        var chain = ml.Transforms.Concatenate("Features", "Pixels").Append(ml.Transforms.Vae(options)).Fit(data);
        return (chain.LastTransformer, chain);
    }

    /// <summary>Passes writes through and copies them into <paramref name="copy"/>, to learn a save's length.</summary>
    private sealed class CountingStream(Stream inner, Stream copy) : Stream
    {
        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => copy.Length; set => throw new NotSupportedException(); }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            inner.Write(buffer);
            copy.Write(buffer);
        }

        public override void Flush() => inner.Flush();

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
