using Microsoft.ML;
using Microsoft.ML.Data;
using Vae.ML.Persistence;
using Vae.ML.Tests.Core;
using Vae.ML.Tests.Persistence;
using Xunit.Abstractions;

namespace Vae.ML.Tests.Reliability;

/// <summary>
/// Every loader gets real files mutated with a fixed seed: truncated at every length (small files) or at spread
/// lengths, each header byte replaced, and random byte flips over the body. Each case must end in a clear managed
/// exception or a load equal to what the file says, and may not allocate much more than the file's size.
/// </summary>
public class FuzzLoaderTests(ITestOutputHelper output)
{
    /// <summary>Cases per format (at least; small files also get every truncation and every header byte).</summary>
    private const int RandomCases = 1000;

    private const int Seed = 20261126;

    private sealed class PixelRow
    {
        [VectorType(Width)]
        public float[] Pixels { get; set; } = [];
    }

    private const int Width = 6;

    private static readonly Lazy<Fixture> Shared = new(() => new Fixture());

    [Fact]
    public void The_model_loader_survives_mutations()
    {
        var fixture = Shared.Value;
        Fuzz(fixture.ModelFile, HeaderEnd(fixture.ModelFile), bytes =>
        {
            var vae = VaeTransformer.Load(fixture.Ml, new MemoryStream(bytes), "cpu");
            return () =>
            {
                using (vae)
                {
                    fixture.ShouldEqualOriginal(VaeSnapshot.Of(vae));
                }
            };
        }, ourLoader: true);
    }

    [Fact]
    public void The_version_1_model_loader_survives_mutations()
    {
        var fixture = Shared.Value;
        // Magic, version, length and JSON header come first; the weights and the checksum follow.
        var headerEnd = 16 + (int)BitConverter.ToUInt32(fixture.LegacyFile, 12);
        Fuzz(fixture.LegacyFile, headerEnd, bytes =>
        {
            var snapshot = VaeModelFormat.Read(new MemoryStream(bytes), "legacy", bytes.Length).Snapshot;
            return () => snapshot.Parameters.Select(p => p.Values.Length).Sum().Should().Be(-1, "a mutated version-1 file must not load: its checksum covers every byte");
        }, ourLoader: true);
    }

    [Fact]
    public void The_checkpoint_loader_survives_mutations()
    {
        var fixture = Shared.Value;
        Fuzz(fixture.CheckpointFile, HeaderEnd(fixture.CheckpointFile), bytes =>
        {
            var file = VaeModelFormat.Read(new MemoryStream(bytes), "checkpoint", bytes.Length, ["optimizer.", "generator."]);
            return () =>
            {
                fixture.ShouldEqualOriginal(file.Snapshot);
                file.Tensors.Keys.Should().BeEquivalentTo("optimizer.exp_avg", "generator.cpu");
                file.Metadata.Should().Contain("epoch", "1");
            };
        }, ourLoader: true);
    }

    [Fact]
    public void The_safetensors_importer_survives_mutations()
    {
        var fixture = Shared.Value;
        var original = fixture.PlainSafetensors;
        var header = Safetensors.ReadHeader(new MemoryStream(original), original.Length, "plain");
        Fuzz(original, HeaderEnd(original), bytes =>
        {
            var snapshot = VaeModelFormat.Import(new MemoryStream(bytes), "plain", bytes.Length, fixture.Options);
            // Plain weights carry no checksum: a load is correct when it holds the float32 values at the (unchangeable,
            // since the tensors must tile the data and match the options) original offsets of the mutated file.
            return () =>
            {
                foreach (var (name, _, values) in snapshot.Parameters)
                {
                    var entry = header.Entries.Single(e => e.Name == name);
                    var expected = bytes[(int)(header.DataStart + entry.Begin)..(int)(header.DataStart + entry.End)];
                    Safetensors.FloatBytes(values).Should().Equal(expected, name);
                }
            };
        }, ourLoader: true);
    }

    [Fact]
    public void The_ML_NET_zip_loader_survives_mutations()
    {
        var fixture = Shared.Value;
        var mlNetSideChanges = 0;
        Fuzz(fixture.Zip, headerEnd: 0, bytes =>
        {
            var model = fixture.Ml.Model.Load(new MemoryStream(bytes), out var schema);
            return () =>
            {
                var transformers = ((IEnumerable<ITransformer>)model).ToList();
                try
                {
                    // Vae.ML's entry is checksummed: if it loads, it is the original.
                    var vae = transformers.OfType<VaeTransformer>().Should().ContainSingle().Subject;
                    fixture.ShouldEqualOriginal(VaeSnapshot.Of(vae));
                    // ML.NET's own entries (input schema, Concatenate) carry no checksum that ML.NET checks: a damaged
                    // column name there loads as a different name. Counted, not failed: that is ML.NET's format.
                    if (!fixture.ScoresLikeOriginal(model, schema))
                    {
                        mlNetSideChanges++;
                    }
                }
                finally
                {
                    transformers.OfType<IDisposable>().ToList().ForEach(d => d.Dispose());
                }
            };
        }, ourLoader: false);
        output.WriteLine($"{mlNetSideChanges} loads differed only in ML.NET's own entries (input schema, Concatenate).");
    }

    /// <summary>
    /// Runs the cases. Our own loaders may only throw <see cref="InvalidDataException"/>; ML.NET's zip loader may wrap
    /// ours or throw its own format errors, but never a crash-type exception (null reference, index, out of memory).
    /// </summary>
    private void Fuzz(byte[] original, int headerEnd, Func<byte[], Action> load, bool ourLoader)
    {
        var random = new Random(Seed);
        var cases = new List<(string Name, byte[] Bytes)>();
        var truncations = original.Length <= 8192 ? Enumerable.Range(0, original.Length) : Enumerable.Range(0, 300).Select(i => (int)((long)original.Length * i / 300));
        foreach (var length in truncations)
        {
            cases.Add(($"truncated to {length} bytes", original[..length]));
        }

        for (var i = 0; i < headerEnd; i++)
        {
            var bytes = (byte[])original.Clone();
            bytes[i] ^= (byte)random.Next(1, 256);
            cases.Add(($"header byte {i} changed to 0x{bytes[i]:X2}", bytes));
        }

        for (var i = 0; i < RandomCases; i++)
        {
            var bytes = (byte[])original.Clone();
            var flips = random.Next(1, 4);
            var where = new List<int>();
            for (var f = 0; f < flips; f++)
            {
                var at = headerEnd < original.Length && random.Next(4) > 0 ? random.Next(headerEnd, original.Length) : random.Next(original.Length);
                bytes[at] ^= (byte)random.Next(1, 256);
                where.Add(at);
            }

            cases.Add(($"bytes {string.Join(", ", where)} flipped", bytes));
        }

        var loaded = 0;
        foreach (var (name, bytes) in cases)
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            Action? verify = null;
            try
            {
                verify = load(bytes);
            }
            catch (Exception e) when (Acceptable(e, ourLoader))
            {
            }
            catch (Exception e)
            {
                throw new Xunit.Sdk.XunitException($"Case '{name}' ended in {e.GetType().Name}, not a clear format error: {e}");
            }

            var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            if (verify is not null)
            {
                // Outside the try: a load that succeeded must be right, whatever the verification throws.
                verify();
                loaded++;
            }

            // Generous for the bookkeeping of a load (JSON, dictionaries, ML.NET's zip reader), far below what a length
            // field read as 2^32 or a tensor claiming gigabytes would cost.
            var allowed = (ourLoader ? 256L << 10 : 16L << 20) + 32L * original.Length;
            allocated.Should().BeLessThan(allowed, $"case '{name}' may not allocate much more than the {original.Length}-byte file justifies");
        }

        output.WriteLine($"{cases.Count} cases on a {original.Length}-byte file: {loaded} loaded correctly, {cases.Count - loaded} rejected.");
        cases.Count.Should().BeGreaterThanOrEqualTo(RandomCases);
        loaded.Should().BeLessThan(cases.Count, "most mutations must be caught");
    }

    private static bool Acceptable(Exception e, bool ourLoader)
    {
        if (ourLoader)
        {
            return e is InvalidDataException;
        }

        // ML.NET calls the Vae.ML loader by reflection, so ours arrives wrapped in TargetInvocationException.
        var chain = new List<Exception>();
        for (Exception? x = e; x is not null; x = x.InnerException)
        {
            chain.Add(x);
        }

        return !chain.Any(x => x is OutOfMemoryException or NullReferenceException or IndexOutOfRangeException or AccessViolationException or StackOverflowException)
            && chain.Any(x => x is InvalidDataException or InvalidOperationException or FormatException or IOException or ArgumentException);
    }

    private static int HeaderEnd(byte[] safetensors) => 8 + (int)BitConverter.ToUInt64(safetensors, 0);

    private sealed class Fixture
    {
        public Fixture()
        {
            Options = new VaeOptions
            {
                HiddenSizes = [3], LatentDimension = 2, Epochs = 1, BatchSize = 16, Seed = 4, Device = "cpu",
                FeatureColumnName = "Features", LatentColumnName = "Z",
            };
            var rows = SyntheticData.Rows(32, seed: 5, width: Width).Select(r => new PixelRow { Pixels = r.Features }).ToArray();
            Probe = Ml.Data.LoadFromEnumerable(rows.Take(4).ToArray());
            var data = Ml.Data.LoadFromEnumerable(rows);
            var chain = Ml.Transforms.Concatenate("Features", "Pixels").Append(Ml.Transforms.Vae(Options)).Fit(data);
            var vae = chain.LastTransformer;
            Original = VaeSnapshot.Of(vae);
            ExpectedZ = chain.Transform(Probe).GetColumn<float[]>("Z").SelectMany(v => v).ToArray();

            using (var buffer = new MemoryStream())
            {
                vae.Save(buffer);
                ModelFile = buffer.ToArray();
            }

            using (var buffer = new MemoryStream())
            {
                VaeModelFormat.Write(buffer, Original, new VaeFileExtras(
                    new Dictionary<string, string> { ["epoch"] = "1" },
                    [Safetensors.RawTensor.Float32("optimizer.exp_avg", [3, Width], Enumerable.Range(0, 3 * Width).Select(i => (float)i).ToArray()),
                     new Safetensors.RawTensor("generator.cpu", "U8", [4], [9, 8, 7, 6])]));
                CheckpointFile = buffer.ToArray();
            }

            using (var buffer = new MemoryStream())
            {
                Safetensors.Write(buffer, Original.Parameters, new Dictionary<string, string> { ["format"] = "pt" });
                PlainSafetensors = buffer.ToArray();
            }

            using (var buffer = new MemoryStream())
            {
                Ml.Model.Save(chain, data.Schema, buffer);
                Zip = buffer.ToArray();
            }

            LegacyFile = File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "Persistence", "TestData", "legacy-v1-16-8-2.vae"));
            vae.Dispose();
        }

        public MLContext Ml { get; } = new(seed: 0);

        public VaeOptions Options { get; }

        public VaeSnapshot Original { get; }

        public IDataView Probe { get; }

        public float[] ExpectedZ { get; }

        public byte[] ModelFile { get; }

        public byte[] CheckpointFile { get; }

        public byte[] PlainSafetensors { get; }

        public byte[] Zip { get; }

        public byte[] LegacyFile { get; }

        public void ShouldEqualOriginal(VaeSnapshot loaded)
        {
            loaded.Columns.Should().Be(Original.Columns);
            (loaded.Architecture.InputSize, loaded.Architecture.LatentDimension, loaded.Beta).Should().Be((Original.Architecture.InputSize, Original.Architecture.LatentDimension, Original.Beta));
            loaded.Architecture.HiddenSizes.Should().Equal(Original.Architecture.HiddenSizes);
            loaded.History.Should().Equal(Original.History);
            loaded.Parameters.Select(p => (p.Name, Safetensors.FloatBytes(p.Values)))
                .Should().BeEquivalentTo(Original.Parameters.Select(p => (p.Name, Safetensors.FloatBytes(p.Values))), o => o.WithStrictOrdering());
        }

        public bool ScoresLikeOriginal(ITransformer model, DataViewSchema? schema)
        {
            try
            {
                return schema?["Pixels"].Type.Equals(new VectorDataViewType(NumberDataViewType.Single, Width)) != false
                    && model.Transform(Probe).GetColumn<float[]>("Z").SelectMany(v => v).Select(BitConverter.SingleToUInt32Bits)
                        .SequenceEqual(ExpectedZ.Select(BitConverter.SingleToUInt32Bits));
            }
            catch (ArgumentOutOfRangeException)
            {
                return false; // a column ML.NET's damaged entry renamed
            }
        }
    }
}
