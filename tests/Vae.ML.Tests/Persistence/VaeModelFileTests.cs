using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Microsoft.ML;
using Vae.ML.Persistence;
using static Vae.ML.Tests.Persistence.PersistenceFixtures;

namespace Vae.ML.Tests.Persistence;

public class VaeModelFileTests
{
    [Fact]
    public void Stream_round_trip_restores_everything_bit_for_bit()
    {
        var ml = new MLContext(seed: 0);
        using var original = Train(ml);
        var probe = Probe();
        using var buffer = new MemoryStream();

        original.Save(buffer);
        buffer.Position = 0;
        using var loaded = VaeTransformer.Load(new MLContext(seed: 1), buffer, "cpu");

        buffer.Position.Should().Be(buffer.Length, "Load stops right after the model");
        loaded.InputSize.Should().Be(original.InputSize);
        loaded.HiddenSizes.Should().Equal(original.HiddenSizes);
        loaded.LatentDimension.Should().Be(3);
        loaded.Beta.Should().Be(0.75);
        loaded.Device.Should().Be("cpu");
        (loaded.FeatureColumnName, loaded.LatentColumnName, loaded.LatentLogVarianceColumnName, loaded.ReconstructionColumnName, loaded.ScoreColumnName)
            .Should().Be(("Features", "Z", "LatentLogVariance", "Reconstruction", "Anomaly"));
        loaded.History.Should().Equal(original.History);
        loaded.History.Should().HaveCount(2);
        ShouldBeBitwiseEqual(Outputs(loaded, probe), Outputs(original, probe));
    }

    [Fact]
    public void File_round_trip_with_several_hidden_layers_and_nan_in_history()
    {
        var ml = new MLContext(seed: 0);
        using var trained = Train(ml, SmallOptions(hiddenSizes: [24, 12, 6]));
        // A diverged run leaves NaN/∞ in the history; the header must carry them.
        using var original = new VaeTransformer(ml, trained.Model, trained.Columns, trained.Beta,
            [trained.History[0] with { TrainLoss = double.NaN, ValidationLoss = double.PositiveInfinity }, trained.History[1]]);
        using var scratch = new ScratchDirectory();
        var path = scratch.File("model.vae");

        original.Save(path);
        using var loaded = VaeTransformer.Load(ml, path);

        loaded.HiddenSizes.Should().Equal(24, 12, 6);
        loaded.History.Should().Equal(original.History);
        loaded.Model.GetParameters().Select(p => p.Name).Should().Equal(
            "fc1.weight", "fc1.bias", "fc1_1.weight", "fc1_1.bias", "fc1_2.weight", "fc1_2.bias", "fc21.weight", "fc21.bias",
            "fc22.weight", "fc22.bias", "fc3.weight", "fc3.bias", "fc3_1.weight", "fc3_1.bias", "fc3_2.weight", "fc3_2.bias",
            "fc4.weight", "fc4.bias");
        ShouldBeBitwiseEqual(Outputs(loaded, Probe()), Outputs(original, Probe()));
        Directory.GetFiles(scratch.Path).Should().Equal([path], "no temporary file is left behind");
    }

    [Fact]
    public void Layout_computed_without_torch_equals_the_network()
    {
        var ml = new MLContext(seed: 0);
        foreach (var hidden in new[] { new[] { 7 }, new[] { 9, 5 }, new[] { 8, 6, 4, 3 } })
        {
            using var vae = Train(ml, SmallOptions(hidden), rows: 32);
            var layout = VaeParameterLayout.For(vae.Model.Architecture);
            layout.Select(t => (t.Name, string.Join("x", t.Shape)))
                .Should().Equal(vae.Model.GetParameters().Select(p => (p.Name, string.Join("x", p.Shape))));
        }
    }

    [Fact]
    public void Every_truncation_is_rejected_with_the_file_name()
    {
        var bytes = SavedModelBytes(out var path, out var scratch);
        using (scratch)
        {
            for (var length = 0; length < bytes.Length; length++)
            {
                var load = () => VaeModelFile.Read(new MemoryStream(bytes[..length]), $"'{path}'");
                var message = load.Should().Throw<InvalidDataException>().Which.Message;
                message.Should().StartWith($"'{path}' ", $"length {length}");
                if (length >= 8)
                {
                    message.Should().Contain($"is truncated: it ends after {length} bytes", "the message says where the file ends");
                }
            }

            File.WriteAllBytes(path, bytes[..(bytes.Length - 1)]);
            var lastMessage = FluentActions.Invoking(() => VaeTransformer.Load(new MLContext(), path)).Should().Throw<InvalidDataException>().Which.Message;
            lastMessage.Should().Contain(Path.GetFullPath(path)).And.Contain("truncated").And.Contain("checksum");
        }
    }

    [Fact]
    public void Every_flipped_bit_is_rejected()
    {
        var bytes = SavedModelBytes(out _, out var scratch);
        using (scratch)
        {
            foreach (var mask in new byte[] { 0x01, 0x80 })
            {
                for (var i = 0; i < bytes.Length; i++)
                {
                    var corrupt = (byte[])bytes.Clone();
                    corrupt[i] ^= mask;
                    var load = () => VaeModelFile.Read(new MemoryStream(corrupt), "the test file");
                    load.Should().Throw<InvalidDataException>($"byte {i} ^ 0x{mask:X2} must not go unnoticed");
                }
            }
        }
    }

    [Fact]
    public void A_flipped_weight_names_the_checksum_and_the_file()
    {
        var bytes = SavedModelBytes(out var path, out var scratch);
        using (scratch)
        {
            bytes[^100] ^= 0x10;
            File.WriteAllBytes(path, bytes);
            FluentActions.Invoking(() => VaeTransformer.Load(new MLContext(), path)).Should().Throw<InvalidDataException>()
                .WithMessage($"'{Path.GetFullPath(path)}' is corrupt: its SHA-256 checksum does not match*");
        }
    }

    [Fact]
    public void A_newer_format_version_asks_for_a_newer_Vae_ML()
    {
        var bytes = SavedModelBytes(out var path, out var scratch);
        using (scratch)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(8), VaeModelFile.CurrentVersion + 1);
            File.WriteAllBytes(path, bytes);
            FluentActions.Invoking(() => VaeTransformer.Load(new MLContext(), path)).Should().Throw<InvalidDataException>()
                .WithMessage($"'{Path.GetFullPath(path)}' uses Vae.ML model format version 2; this Vae.ML (Vae.ML *) reads versions 1 to 1. Load it with a newer Vae.ML.");
        }
    }

    [Theory]
    [InlineData(new byte[0])]
    [InlineData(new byte[] { 0x89, (byte)'V' })]
    [InlineData(new byte[] { (byte)'P', (byte)'K', 3, 4, 20, 0, 0, 0, 8, 0, 0, 0 })]
    public void Something_else_is_not_a_Vae_ML_file(byte[] content)
    {
        using var scratch = new ScratchDirectory();
        var path = scratch.File("other.bin");
        File.WriteAllBytes(path, content);
        FluentActions.Invoking(() => VaeTransformer.Load(new MLContext(), path)).Should().Throw<InvalidDataException>()
            .WithMessage($"'{Path.GetFullPath(path)}' is not a Vae.ML model file*");
        FluentActions.Invoking(() => VaeTransformer.Load(new MLContext(), new MemoryStream(Encoding.UTF8.GetBytes("{\"hello\": 1}"))))
            .Should().Throw<InvalidDataException>().WithMessage("The Vae.ML model stream is not a Vae.ML model file*");
    }

    [Fact]
    public void Trailing_bytes_after_the_checksum_are_rejected_for_files()
    {
        var bytes = SavedModelBytes(out var path, out var scratch);
        using (scratch)
        {
            File.WriteAllBytes(path, [.. bytes, 0]);
            FluentActions.Invoking(() => VaeTransformer.Load(new MLContext(), path)).Should().Throw<InvalidDataException>()
                .WithMessage("*1 unexpected bytes follow the model's checksum*");
        }
    }

    [Fact]
    public void A_consistent_but_hostile_header_is_rejected_before_allocating()
    {
        // A header with a valid checksum can still lie: a billion-wide input, or tensors that do not fit the architecture.
        var header = """
            {"library":"x","columns":{"feature":"F","latent":"L","latentLogVariance":"V","reconstruction":"R","score":"S"},
             "inputSize":1000000000,"hiddenSizes":[1000000000],"latentDimension":2,"beta":1,"history":[],"tensors":[]}
            """;
        FluentActions.Invoking(() => VaeModelFile.Read(new MemoryStream(FileWithHeader(header)), "hostile"))
            .Should().Throw<InvalidDataException>().WithMessage("hostile is corrupt: a layer has more weights than one array can hold.");

        var small = header.Replace("1000000000", "4");
        FluentActions.Invoking(() => VaeModelFile.Read(new MemoryStream(FileWithHeader(small)), "hostile"))
            .Should().Throw<InvalidDataException>().WithMessage("hostile is corrupt: its tensors [] do not match its architecture*fc1.weight [4, 4]*");

        var badColumns = small.Replace("\"latent\":\"L\"", "\"latent\":\"F\"");
        FluentActions.Invoking(() => VaeModelFile.Read(new MemoryStream(FileWithHeader(badColumns)), "hostile"))
            .Should().Throw<InvalidDataException>().WithMessage("hostile is corrupt: LatentColumnName 'F' collides with FeatureColumnName*");
    }

    [Fact]
    public void A_failed_save_leaves_the_previous_file_loadable()
    {
        var ml = new MLContext(seed: 0);
        using var first = Train(ml);
        var secondOptions = SmallOptions();
        secondOptions.Seed = 6;
        using var second = Train(ml, secondOptions);
        using var scratch = new ScratchDirectory();
        var path = scratch.File("model.vae");
        first.Save(path);
        var before = File.ReadAllBytes(path);

        // The same write as Save(path), but the "disk" fills up halfway through the weights.
        var write = () => AtomicFile.Write(path, stream => second.Save(new FailingStream(stream, before.Length / 2)));
        write.Should().Throw<IOException>().WithMessage("No space left on device (simulated).");
        var throwing = () => AtomicFile.Write(path, _ => throw new InvalidOperationException("crash"));
        throwing.Should().Throw<InvalidOperationException>();

        File.ReadAllBytes(path).Should().Equal(before);
        Directory.GetFiles(scratch.Path).Should().Equal([path], "the temporary file is removed");
        using var loaded = VaeTransformer.Load(ml, path);
        ShouldBeBitwiseEqual(Outputs(loaded, Probe()), Outputs(first, Probe()));
    }

    [Fact]
    public void Save_replaces_an_existing_file_and_rejects_a_directory()
    {
        var ml = new MLContext(seed: 0);
        using var vae = Train(ml);
        using var scratch = new ScratchDirectory();
        var path = scratch.File("model.vae");
        File.WriteAllText(path, "old content");

        vae.Save(path);
        using (var loaded = VaeTransformer.Load(ml, path))
        {
            loaded.InputSize.Should().Be(vae.InputSize);
        }

        FluentActions.Invoking(() => vae.Save(scratch.Path)).Should().Throw<IOException>().WithMessage("*is a directory*");
        FluentActions.Invoking(() => VaeTransformer.Load(ml, scratch.File("missing.vae"))).Should().Throw<FileNotFoundException>();
    }

    [Fact]
    public void A_disposed_transformer_cannot_be_saved()
    {
        var vae = Train(new MLContext(seed: 0));
        vae.Dispose();
        FluentActions.Invoking(() => vae.Save(new MemoryStream())).Should().Throw<ObjectDisposedException>();
    }

    private static byte[] SavedModelBytes(out string path, out ScratchDirectory scratch)
    {
        var ml = new MLContext(seed: 0);
        using var vae = Train(ml, SmallOptions([8]), rows: 64);
        scratch = new ScratchDirectory();
        path = scratch.File("model.vae");
        vae.Save(path);
        return File.ReadAllBytes(path);
    }

    /// <summary>A file with a correct magic, version, length and checksum around an arbitrary header and no weights.</summary>
    private static byte[] FileWithHeader(string json)
    {
        var header = Encoding.UTF8.GetBytes(json);
        var bytes = new byte[16 + header.Length];
        new byte[] { 0x89, (byte)'V', (byte)'a', (byte)'e', (byte)'.', (byte)'M', (byte)'L', 0x0A }.CopyTo(bytes, 0);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(8), 1);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(12), (uint)header.Length);
        header.CopyTo(bytes, 16);
        return [.. bytes, .. SHA256.HashData(bytes)];
    }
}
