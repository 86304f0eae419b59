using System.Text.Json;
using Microsoft.ML;
using Vae.ML.Persistence;
using Vae.ML.Tests.Core;
using static Vae.ML.Tests.Reliability.TrainingTestSupport;

namespace Vae.ML.Tests.Architecture;

/// <summary>
/// Files written before <see cref="VaeOptions.Architecture"/> existed (model format 2, checkpoint format 1; see
/// TestData/README.md) still load, as MLPs without an image shape, and give the outputs they gave then, bit for bit.
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
    public void A_version_1_checkpoint_resumes_into_the_model_its_run_ended_with()
    {
        // The options and data of the run that wrote the fixtures (TestData/README.md).
        var ml = new MLContext(seed: 1);
        var data = SyntheticData.Load(ml, 128);
        var options = new VaeOptions
        {
            HiddenSizes = [12, 6], LatentDimension = 2, Epochs = 2, BatchSize = 32, Beta = 0.5, Seed = 11, Device = "cpu",
            ResumeFrom = TestData("checkpoint-v1-mlp-12-6-2-epoch-0001.safetensors"),
        };

        var (run, state) = VaeCheckpoint.Read(options.ResumeFrom);
        run.Architecture.Should().Be(VaeArchitecture.Mlp);
        run.ImageShape.Should().BeNull();
        state.Epoch.Should().Be(1);

        using var resumed = ml.Transforms.Vae(options).Fit(data);
        using var original = VaeTransformer.Load(ml, TestData("format-v2-mlp-12-6-2.safetensors"), "cpu");
        resumed.ShouldHaveIdenticalWeights(original);
    }
}
