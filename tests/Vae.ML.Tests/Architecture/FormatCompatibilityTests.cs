using System.Text.Json;
using Microsoft.ML;
using Vae.ML.Persistence;
using Vae.ML.Tests.Core;
using Vae.ML.Tests.Persistence;
using static Vae.ML.Tests.Reliability.TrainingTestSupport;

namespace Vae.ML.Tests.Architecture;

/// <summary>
/// Files written before <see cref="VaeOptions.Architecture"/> existed (model format 2; see TestData/README.md) still load, as MLPs without an image shape, and give the outputs they gave then, bit for bit.
/// </summary>
public class FormatCompatibilityTests
{
    private sealed record Expected(uint[] Probe, uint[] Latent, uint[] LogVariance, uint[] Reconstruction, uint[] Score, int InputSize);

    private static string TestData(string name) => Path.Combine(AppContext.BaseDirectory, "Architecture", "TestData", name);

    private static Expected Outputs() => JsonSerializer.Deserialize<Expected>(
        File.ReadAllText(TestData("format-v2-mlp-12-6-2.expected.json")), new JsonSerializerOptions(JsonSerializerDefaults.Web))!;

    private static void ShouldGiveTheRecordedOutputs(VaeTransformer vae)
    {
        var expected = Outputs();
        vae.Architecture.Should().Be(VaeArchitecture.Mlp);
        vae.ImageShape.Should().BeNull();
        vae.InputSize.Should().Be(expected.InputSize);
        vae.HiddenSizes.Should().Equal(12, 6);
        var probe = expected.Probe.Select(BitConverter.UInt32BitsToSingle).ToArray();
        var mu = vae.Encode(probe, out var logVariance);
        mu.Select(BitConverter.SingleToUInt32Bits).Should().Equal(expected.Latent);
        logVariance.Select(BitConverter.SingleToUInt32Bits).Should().Equal(expected.LogVariance);
        vae.Reconstruct(probe).Select(BitConverter.SingleToUInt32Bits).Should().Equal(expected.Reconstruction);
        vae.Score(probe).Select(BitConverter.SingleToUInt32Bits).Should().Equal(expected.Score);
    }

    [Fact]
    public void A_version_2_model_file_loads_as_the_MLP_it_was()
    {
        var ml = new MLContext(seed: 0);
        var path = TestData("format-v2-mlp-12-6-2.safetensors");
        using (var stream = File.OpenRead(path))
        {
            VaeModelFormat.Read(stream, path, stream.Length).FormatVersion.Should().Be(2);
        }

        using var vae = VaeTransformer.Load(ml, path, "cpu");
        ShouldGiveTheRecordedOutputs(vae);
        vae.History.Should().HaveCount(2);

        // Saving it again writes the current version, which names the architecture.
        using var buffer = new MemoryStream();
        vae.Save(buffer);
        var file = VaeModelFormat.Read(new MemoryStream(buffer.ToArray()), "upgraded", buffer.Length);
        file.FormatVersion.Should().Be(VaeModelFormat.CurrentVersion);
        file.Snapshot.Architecture.Kind.Should().Be(VaeArchitecture.Mlp);
    }

    [Fact]
    public void A_version_2_MLContext_zip_loads_as_the_MLP_it_was()
    {
        var ml = new MLContext(seed: 0);
        var model = ml.Model.Load(TestData("format-v2-mlp-12-6-2.zip"), out var schema);
        schema.Should().NotBeNull();
        using var vae = model.Should().BeOfType<VaeTransformer>().Subject;
        ShouldGiveTheRecordedOutputs(vae);
    }

    [Fact]
    public void A_checkpoint_written_before_the_architecture_options_resumes_as_the_MLP_it_was()
    {
        var ml = new MLContext(seed: 1);
        var data = SyntheticData.Load(ml, 128);
        VaeOptions Options(int epochs) => new() { HiddenSizes = [12, 6], LatentDimension = 2, Epochs = epochs, BatchSize = 32, Seed = 11, Device = "cpu" };
        using var uninterrupted = ml.Transforms.Vae(Options(2)).Fit(data);

        using var folder = new ScratchDirectory();
        var first = Options(1);
        first.CheckpointDirectory = folder.Path;
        using (ml.Transforms.Vae(first).Fit(data))
        {
        }

        // What the checkpoint format wrote before this issue: model format 2 without architecture entries, and
        // training options without "architecture" / "imageShape".
        var path = folder.File("checkpoint-epoch-0001.safetensors");
        var bytes = Rewrite(File.ReadAllBytes(path), metadata =>
        {
            metadata["vae_ml_format_version"] = "2";
            metadata.Remove("architecture").Should().BeTrue();
            var options = System.Text.Json.Nodes.JsonNode.Parse(metadata["training_options"])!.AsObject();
            options.Remove("architecture").Should().BeTrue();
            options.Remove("imageShape").Should().BeTrue();
            metadata["training_options"] = options.ToJsonString();
        });
        var old = folder.File("old-checkpoint.safetensors");
        File.WriteAllBytes(old, bytes);

        var (run, _, state) = VaeCheckpoint.Read(old);
        run.Architecture.Should().Be(VaeArchitecture.Mlp);
        run.ImageShape.Should().BeNull();
        state.Epoch.Should().Be(1);

        var resumed = Options(2);
        resumed.ResumeFrom = old;
        using var continued = ml.Transforms.Vae(resumed).Fit(data);
        continued.ShouldHaveIdenticalWeights(uninterrupted);
    }

    /// <summary>The file with <paramref name="edit"/> applied to its metadata and the header checksum recomputed.</summary>
    private static byte[] Rewrite(byte[] file, Action<Dictionary<string, string>> edit)
    {
        var header = Safetensors.ReadHeader(new MemoryStream(file), file.Length, "test");
        var metadata = header.Metadata.ToDictionary(m => m.Key, m => m.Value);
        edit(metadata);
        var tensors = header.Entries.Select(e => new Safetensors.RawTensor(e.Name, e.DType, e.Shape, file[(int)(header.DataStart + e.Begin)..(int)(header.DataStart + e.End)])).ToList();
        metadata[VaeModelFormat.Keys.HeaderSha256] = VaeModelFormat.HeaderSha256(metadata, tensors);
        using var buffer = new MemoryStream();
        Safetensors.Write(buffer, tensors, metadata);
        return buffer.ToArray();
    }
}
