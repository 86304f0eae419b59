using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.ML;
using Vae.ML.Persistence;
using static Vae.ML.Tests.Persistence.PersistenceFixtures;

namespace Vae.ML.Tests.Persistence;

/// <summary>The one model format: a safetensors file with Vae.ML's metadata, written by Save and ExportSafetensors.</summary>
public class VaeModelFormatTests
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
    public void A_stream_can_hold_two_models_one_after_the_other()
    {
        var ml = new MLContext(seed: 0);
        using var first = Train(ml, SmallOptions([8]), rows: 64);
        using var second = Train(ml, SmallOptions([6, 4]), rows: 64);
        using var buffer = new MemoryStream();
        first.Save(buffer);
        second.Save(buffer);
        buffer.Position = 0;

        using var a = VaeTransformer.Load(ml, buffer, "cpu");
        using var b = VaeTransformer.Load(ml, buffer, "cpu");

        a.HiddenSizes.Should().Equal(8);
        b.HiddenSizes.Should().Equal(6, 4);
        buffer.Position.Should().Be(buffer.Length);
    }

    [Fact]
    public void File_round_trip_with_several_hidden_layers_and_nan_in_history()
    {
        var ml = new MLContext(seed: 0);
        using var trained = Train(ml, SmallOptions(hiddenSizes: [24, 12, 6]));
        // A diverged run leaves NaN/∞ in the history; the metadata must carry them.
        using var original = new VaeTransformer(ml, trained.Model, trained.Columns, trained.Beta,
            [trained.History[0] with { TrainLoss = double.NaN, ValidationLoss = double.PositiveInfinity }, trained.History[1]]);
        using var scratch = new ScratchDirectory();
        var path = scratch.File("model.safetensors");

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
    public void Save_and_ExportSafetensors_write_the_same_self_describing_safetensors_file()
    {
        var ml = new MLContext(seed: 0);
        using var vae = Train(ml, SmallOptions([8]), rows: 64);
        using var scratch = new ScratchDirectory();
        vae.Save(scratch.File("a.safetensors"));
        vae.ExportSafetensors(scratch.File("b.safetensors"));
        var bytes = File.ReadAllBytes(scratch.File("a.safetensors"));
        File.ReadAllBytes(scratch.File("b.safetensors")).Should().Equal(bytes);

        var headerLength = (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        (8 + headerLength).Should().Be((8 + headerLength + 7) / 8 * 8, "the data starts 8-byte aligned");
        using var header = JsonDocument.Parse(bytes.AsMemory(8, headerLength));
        var metadata = header.RootElement.GetProperty("__metadata__").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!);
        metadata.Should().Contain("format", "pt").And.Contain("vae_ml_format_version", "4").And.Contain("architecture", "mlp").And.Contain("likelihood", "bernoulli").And.Contain("input_size", "64")
            .And.Contain("hidden_sizes", "8").And.Contain("latent_dimension", "3").And.Contain("beta", "0.75")
            .And.Contain("feature_column", "Features").And.Contain("latent_column", "Z").And.Contain("score_column", "Anomaly");
        metadata["library"].Should().StartWith("Vae.ML ");
        JsonSerializer.Deserialize<VaeEpochMetrics[]>(metadata["history"], new JsonSerializerOptions(JsonSerializerDefaults.Web))
            .Should().Equal(vae.History);
        // What a PyTorch user checks with hashlib.sha256(data).hexdigest():
        metadata["tensors_sha256"].Should().Be(Convert.ToHexString(SHA256.HashData(bytes.AsSpan(8 + headerLength))).ToLowerInvariant());
        metadata["header_sha256"].Should().Be(VaeModelFormat.HeaderSha256(Safetensors.ReadHeader(new MemoryStream(bytes), bytes.Length, "a")));
    }

    [Fact]
    public void Layout_computed_without_torch_equals_the_network()
    {
        var ml = new MLContext(seed: 0);
        foreach (var hidden in new[] { new[] { 7 }, new[] { 9, 5 }, new[] { 8, 6, 4, 3 } })
        {
            using var vae = Train(ml, SmallOptions(hidden), rows: 32);
            var layout = vae.Model.Architecture.Layout;
            layout.Select(t => (t.Name, string.Join("x", t.Shape)))
                .Should().Equal(vae.Model.GetParameters().Select(p => (p.Name, string.Join("x", p.Shape))));
        }
    }

    [Fact]
    public void Every_truncation_is_rejected_with_the_source_name()
    {
        var bytes = SavedModelBytes(out var path, out var scratch);
        using (scratch)
        {
            for (var length = 0; length < bytes.Length; length++)
            {
                foreach (var known in new[] { true, false })
                {
                    var cut = bytes[..length];
                    var load = () => VaeModelFormat.Read(new MemoryStream(cut), $"'{path}'", known ? length : null);
                    load.Should().Throw<InvalidDataException>($"length {length}").Which.Message.Should().StartWith($"'{path}' ", $"length {length}");
                }
            }

            File.WriteAllBytes(path, bytes[..(bytes.Length - 1)]);
            FluentActions.Invoking(() => VaeTransformer.Load(new MLContext(), path)).Should().Throw<InvalidDataException>()
                .Which.Message.Should().Contain(Path.GetFullPath(path)).And.Contain("bytes of data");
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
                    var load = () => VaeModelFormat.Read(new MemoryStream(corrupt), "the test file", corrupt.Length);
                    load.Should().Throw<InvalidDataException>($"byte {i} ^ 0x{mask:X2} must not go unnoticed");
                }
            }
        }
    }

    [Fact]
    public void A_flipped_weight_or_header_value_names_the_checksum_and_the_file()
    {
        var bytes = SavedModelBytes(out var path, out var scratch);
        using (scratch)
        {
            var weight = (byte[])bytes.Clone();
            weight[^100] ^= 0x10;
            File.WriteAllBytes(path, weight);
            FluentActions.Invoking(() => VaeTransformer.Load(new MLContext(), path)).Should().Throw<InvalidDataException>()
                .WithMessage($"'{Path.GetFullPath(path)}' is corrupt: the SHA-256 of its tensor bytes does not match its tensors_sha256.");

            var beta = (byte[])bytes.Clone();
            var at = beta.AsSpan().IndexOf("\"beta\":\"0.75\""u8);
            at.Should().BePositive();
            beta[at + 10] = (byte)'2';
            File.WriteAllBytes(path, beta);
            FluentActions.Invoking(() => VaeTransformer.Load(new MLContext(), path)).Should().Throw<InvalidDataException>()
                .WithMessage($"'{Path.GetFullPath(path)}' is corrupt: its header does not match its header_sha256.");
        }
    }

    [Fact]
    public void ImportSafetensors_verifies_the_checksums_a_Vae_ML_file_carries()
    {
        var bytes = SavedModelBytes(out var path, out var scratch);
        using (scratch)
        {
            bytes[^1] ^= 0x04;
            File.WriteAllBytes(path, bytes);
            FluentActions.Invoking(() => VaeTransformer.ImportSafetensors(new MLContext(), path, SmallOptions([8])))
                .Should().Throw<InvalidDataException>().WithMessage("*is corrupt: the SHA-256 of its tensor bytes does not match its tensors_sha256.");
        }
    }

    [Fact]
    public void A_newer_format_version_asks_for_a_newer_Vae_ML()
    {
        var file = Rewrite(SavedModelBytes(out var path, out var scratch), metadata => metadata["vae_ml_format_version"] = "5");
        using (scratch)
        {
            File.WriteAllBytes(path, file);
            FluentActions.Invoking(() => VaeTransformer.Load(new MLContext(), path)).Should().Throw<InvalidDataException>()
                .WithMessage($"'{Path.GetFullPath(path)}' uses Vae.ML model format version 5; this Vae.ML (Vae.ML *) reads versions 1 to 4. Load it with a newer Vae.ML.");
        }
    }

    [Fact]
    public void Plain_safetensors_weights_point_to_ImportSafetensors()
    {
        var file = Rewrite(SavedModelBytes(out var path, out var scratch), metadata => metadata.Clear());
        using (scratch)
        {
            File.WriteAllBytes(path, file);
            FluentActions.Invoking(() => VaeTransformer.Load(new MLContext(), path)).Should().Throw<InvalidDataException>()
                .WithMessage("*is a safetensors file without Vae.ML's metadata*ImportSafetensors(mlContext, path, options)*");
            var options = SmallOptions([8]);
            using var imported = VaeTransformer.ImportSafetensors(new MLContext(), path, options);
            imported.HiddenSizes.Should().Equal(8);
        }
    }

    [Theory]
    [InlineData(new byte[0], "'*' is not a Vae.ML model: it holds only 0 bytes.")]
    [InlineData(new byte[] { 0x89, (byte)'V' }, "'*' is not a Vae.ML model: it holds only 2 bytes.")]
    [InlineData(new byte[] { (byte)'P', (byte)'K', 3, 4, 20, 0, 0, 0, 8, 0, 0, 0 }, "'*' is not a valid safetensors file: its header claims *")]
    public void Something_else_is_not_a_Vae_ML_file(byte[] content, string message)
    {
        using var scratch = new ScratchDirectory();
        var path = scratch.File("other.bin");
        File.WriteAllBytes(path, content);
        FluentActions.Invoking(() => VaeTransformer.Load(new MLContext(), path)).Should().Throw<InvalidDataException>().WithMessage(message);
        FluentActions.Invoking(() => VaeTransformer.Load(new MLContext(), new MemoryStream(Encoding.UTF8.GetBytes("{\"hello\": 1}"))))
            .Should().Throw<InvalidDataException>().WithMessage("The Vae.ML model stream is not a valid safetensors file*");
    }

    [Fact]
    public void Trailing_bytes_are_rejected_for_files()
    {
        var bytes = SavedModelBytes(out var path, out var scratch);
        using (scratch)
        {
            File.WriteAllBytes(path, [.. bytes, 0]);
            FluentActions.Invoking(() => VaeTransformer.Load(new MLContext(), path)).Should().Throw<InvalidDataException>()
                .WithMessage($"*the tensors cover {bytes.Length - 8 - (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes)} bytes of data but the file holds*");
        }
    }

    [Fact]
    public void A_consistent_but_hostile_header_is_rejected_before_allocating()
    {
        // Metadata with a valid checksum can still lie: a billion-wide input, or columns that collide.
        var bytes = SavedModelBytes(out _, out var scratch);
        using (scratch)
        {
            var huge = Rewrite(bytes, m => (m["input_size"], m["hidden_sizes"]) = ("1000000000", "1000000000"));
            FluentActions.Invoking(() => VaeModelFormat.Read(new MemoryStream(huge), "hostile", huge.Length))
                .Should().Throw<InvalidDataException>().WithMessage("hostile is corrupt: a layer has more weights than one array can hold.");

            var other = Rewrite(bytes, m => m["input_size"] = "65");
            FluentActions.Invoking(() => VaeModelFormat.Read(new MemoryStream(other), "hostile", other.Length))
                .Should().Throw<InvalidDataException>().WithMessage("hostile is corrupt: tensor 'fc1.weight' is F32 [8, 64]; its architecture needs F32 [8, 65].");

            var badColumns = Rewrite(bytes, m => m["latent_column"] = "Features");
            FluentActions.Invoking(() => VaeModelFormat.Read(new MemoryStream(badColumns), "hostile", badColumns.Length))
                .Should().Throw<InvalidDataException>().WithMessage("hostile is corrupt: LatentColumnName 'Features' collides with FeatureColumnName*");

            var badHistory = Rewrite(bytes, m => m["history"] = "[null]");
            FluentActions.Invoking(() => VaeModelFormat.Read(new MemoryStream(badHistory), "hostile", badHistory.Length))
                .Should().Throw<InvalidDataException>().WithMessage("hostile is corrupt: its training history is not a list of epochs.");
        }
    }

    [Fact]
    public void Extra_tensors_and_metadata_are_read_only_when_the_caller_asks_for_them()
    {
        var ml = new MLContext(seed: 0);
        using var vae = Train(ml, SmallOptions([8]), rows: 64);
        var snapshot = VaeSnapshot.Of(vae);
        var moments = Safetensors.RawTensor.Float32("optimizer.fc1.weight.exp_avg", [8, 64], Enumerable.Range(0, 512).Select(i => i * 0.5f).ToArray());
        var generator = new Safetensors.RawTensor("generator.cpu", "U8", [5], [1, 2, 3, 4, 5]);
        var extras = new VaeFileExtras(new Dictionary<string, string> { ["epoch"] = "3" }, [moments, generator]);
        using var buffer = new MemoryStream();
        VaeModelFormat.Write(buffer, snapshot, extras);
        var bytes = buffer.ToArray();

        var file = VaeModelFormat.Read(new MemoryStream(bytes), "checkpoint", bytes.Length, ["optimizer.", "generator."]);

        file.FormatVersion.Should().Be(VaeModelFormat.CurrentVersion);
        file.Metadata.Should().Equal(new Dictionary<string, string> { ["epoch"] = "3" });
        file.Tensors.Keys.Should().BeEquivalentTo("optimizer.fc1.weight.exp_avg", "generator.cpu");
        file.Tensors["generator.cpu"].Should().Match<Safetensors.RawTensor>(t => t.DType == "U8" && t.Data.SequenceEqual(new byte[] { 1, 2, 3, 4, 5 }));
        file.Tensors["optimizer.fc1.weight.exp_avg"].Data.Should().Equal(moments.Data);
        file.Tensors["optimizer.fc1.weight.exp_avg"].ToFloat32().Should().Equal(Enumerable.Range(0, 512).Select(i => i * 0.5f));
        file.Snapshot.Parameters.Select(p => p.Values).Should().BeEquivalentTo(snapshot.Parameters.Select(p => p.Values), o => o.WithStrictOrdering());

        FluentActions.Invoking(() => VaeModelFormat.Read(new MemoryStream(bytes), "a model", bytes.Length, ["optimizer."]))
            .Should().Throw<InvalidDataException>().WithMessage("a model holds tensors besides the network's: [generator.cpu]. A training checkpoint is not a model file.");
        FluentActions.Invoking(() => VaeTransformer.Load(ml, new MemoryStream(bytes)))
            .Should().Throw<InvalidDataException>().WithMessage("The Vae.ML model stream holds tensors besides the network's: [optimizer.fc1.weight.exp_avg, generator.cpu]*");
        FluentActions.Invoking(() => VaeModelFormat.Write(new MemoryStream(), snapshot, new VaeFileExtras(new Dictionary<string, string> { ["beta"] = "2" }, [])))
            .Should().Throw<ArgumentException>().WithMessage("*'beta'*");
        FluentActions.Invoking(() => VaeModelFormat.Write(new MemoryStream(), snapshot, new VaeFileExtras(new Dictionary<string, string>(), [moments with { Name = "fc1.bias" }])))
            .Should().Throw<ArgumentException>().WithMessage("*'fc1.bias'*");
    }

    [Fact]
    public void Save_replaces_an_existing_file_and_rejects_a_directory()
    {
        var ml = new MLContext(seed: 0);
        using var vae = Train(ml);
        using var scratch = new ScratchDirectory();
        var path = scratch.File("model.safetensors");
        File.WriteAllText(path, "old content");

        vae.Save(path);
        using (var loaded = VaeTransformer.Load(ml, path))
        {
            loaded.InputSize.Should().Be(vae.InputSize);
        }

        FluentActions.Invoking(() => vae.Save(scratch.Path)).Should().Throw<IOException>().WithMessage("*is a directory*");
        FluentActions.Invoking(() => VaeTransformer.Load(ml, scratch.File("missing.safetensors"))).Should().Throw<FileNotFoundException>();
    }

    [Fact]
    public void A_disposed_transformer_cannot_be_saved()
    {
        var vae = Train(new MLContext(seed: 0));
        vae.Dispose();
        FluentActions.Invoking(() => vae.Save(new MemoryStream())).Should().Throw<ObjectDisposedException>();
    }

    internal static byte[] SavedModelBytes(out string path, out ScratchDirectory scratch)
    {
        var ml = new MLContext(seed: 0);
        using var vae = Train(ml, SmallOptions([8]), rows: 64);
        scratch = new ScratchDirectory();
        path = scratch.File("model.safetensors");
        vae.Save(path);
        return File.ReadAllBytes(path);
    }

    /// <summary>The same tensors with edited metadata and a recomputed (so valid) metadata checksum.</summary>
    private static byte[] Rewrite(byte[] file, Action<Dictionary<string, string>> edit)
    {
        var header = Safetensors.ReadHeader(new MemoryStream(file), file.Length, "test");
        var metadata = header.Metadata.ToDictionary(m => m.Key, m => m.Value);
        edit(metadata);
        var tensors = header.Entries.Select(e => new Safetensors.RawTensor(e.Name, e.DType, e.Shape, file[(int)(header.DataStart + e.Begin)..(int)(header.DataStart + e.End)])).ToList();
        if (metadata.ContainsKey(VaeModelFormat.Keys.HeaderSha256))
        {
            metadata[VaeModelFormat.Keys.HeaderSha256] = VaeModelFormat.HeaderSha256(metadata, tensors);
        }

        using var buffer = new MemoryStream();
        Safetensors.Write(buffer, tensors, metadata);
        return buffer.ToArray();
    }
}
