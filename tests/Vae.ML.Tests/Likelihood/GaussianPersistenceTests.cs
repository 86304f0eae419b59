using System.Text.Json;
using Microsoft.ML;
using Microsoft.ML.Data;
using Vae.ML.Persistence;
using Vae.ML.Tests.Persistence;
using Vae.ML.Tests.Reliability;

namespace Vae.ML.Tests.Likelihood;

/// <summary>The Gaussian likelihood, the learned log-variance and the standardization survive every persistence path.</summary>
public class GaussianPersistenceTests
{
    private static VaeTransformer Train(MLContext ml, int epochs = 3)
        => ml.Transforms.Vae(ManifoldData.Options(epochs)).Fit(ManifoldData.Load(ml, ManifoldData.Rows(200, seed: 1)));

    private static float[] Probe() => ManifoldData.Matrix(ManifoldData.Rows(20, seed: 2));

    private static void ShouldMatch(VaeTransformer loaded, VaeTransformer trained)
    {
        loaded.Likelihood.Should().Be(VaeLikelihood.Gaussian);
        loaded.Standardization!.Value.Mean.Should().Equal(trained.Standardization!.Value.Mean);
        loaded.Standardization!.Value.Std.Should().Equal(trained.Standardization!.Value.Std);
        PersistenceFixtures.ShouldBeBitwiseEqual(PersistenceFixtures.Outputs(loaded, Probe()), PersistenceFixtures.Outputs(trained, Probe()));
    }

    [Fact]
    public void Save_and_Load_through_a_file_a_stream_and_safetensors_keep_everything()
    {
        var ml = new MLContext(seed: 0);
        using var trained = Train(ml);
        using var scratch = new ScratchDirectory();

        trained.Save(scratch.File("g.safetensors"));
        using (var fromFile = VaeTransformer.Load(ml, scratch.File("g.safetensors"), "cpu"))
        {
            ShouldMatch(fromFile, trained);
        }

        using var buffer = new MemoryStream();
        trained.Save(buffer);
        buffer.Position = 0;
        using (var fromStream = VaeTransformer.Load(ml, buffer, "cpu"))
        {
            ShouldMatch(fromStream, trained);
        }

        var bytes = File.ReadAllBytes(scratch.File("g.safetensors"));
        var file = VaeModelFormat.Read(new MemoryStream(bytes), "g", bytes.Length);
        file.FormatVersion.Should().Be(4);
        var header = JsonDocument.Parse(bytes.AsSpan(8, (int)BitConverter.ToUInt64(bytes, 0)).ToArray()).RootElement;
        header.GetProperty("__metadata__").GetProperty("likelihood").GetString().Should().Be("gaussian");
        foreach (var name in new[] { "decoder_log_var", "standardization.mean", "standardization.std" })
        {
            header.GetProperty(name).GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()).Should().Equal([ManifoldData.Width]);
        }

        trained.Model.GetParameters().Single(p => p.Name == "decoder_log_var").Values.Should().Contain(v => v != 0f, "the log-variance is trained");
    }

    [Fact]
    public void An_ML_NET_zip_keeps_the_Gaussian_model()
    {
        var ml = new MLContext(seed: 0);
        using var trained = Train(ml);
        using var scratch = new ScratchDirectory();
        var data = ManifoldData.Load(ml, ManifoldData.Rows(20, seed: 2));
        ml.Model.Save(trained, data.Schema, scratch.File("g.zip"));

        var loaded = new MLContext(seed: 5).Model.Load(scratch.File("g.zip"), out _);
        var parts = loaded as IEnumerable<ITransformer> ?? [loaded];
        try
        {
            ShouldMatch(parts.OfType<VaeTransformer>().Single(), trained);
            loaded.Transform(data).GetColumn<float>("Score").Should().Equal(trained.Score(Probe()));
        }
        finally
        {
            parts.OfType<IDisposable>().ToList().ForEach(d => d.Dispose());
        }
    }

    [Fact]
    public void A_Gaussian_run_resumed_from_a_checkpoint_equals_an_uninterrupted_one_bit_for_bit()
    {
        var ml = new MLContext(seed: 0);
        var data = ManifoldData.Load(ml, ManifoldData.Rows(200, seed: 1));
        using var uninterrupted = ml.Transforms.Vae(ManifoldData.Options(epochs: 4)).Fit(data);

        using var folder = new TrainingTestSupport.TempFolder();
        var first = ManifoldData.Options(epochs: 2);
        first.CheckpointDirectory = folder.Path;
        using (ml.Transforms.Vae(first).Fit(data))
        {
        }

        var resumed = ManifoldData.Options(epochs: 4);
        resumed.ResumeFrom = folder.File("checkpoint-epoch-0002.safetensors");
        using var continued = ml.Transforms.Vae(resumed).Fit(data);

        continued.Likelihood.Should().Be(VaeLikelihood.Gaussian);
        continued.ShouldHaveIdenticalWeights(uninterrupted);
        continued.ShouldHaveIdenticalHistory(uninterrupted);

        var otherLikelihood = ManifoldData.Options(epochs: 4);
        otherLikelihood.ResumeFrom = resumed.ResumeFrom;
        otherLikelihood.StandardizeFeatures = false;
        FluentActions.Invoking(() => ml.Transforms.Vae(otherLikelihood).Fit(data))
            .Should().Throw<ArgumentException>().Which.ParamName.Should().Be(nameof(VaeOptions.StandardizeFeatures));
    }

    [Fact]
    public void A_corrupt_standardization_is_refused_with_the_file_named()
    {
        var ml = new MLContext(seed: 0);
        using var trained = Train(ml, epochs: 1);
        var snapshot = VaeSnapshot.Of(trained);
        var broken = snapshot with
        {
            Parameters = snapshot.Parameters.Select(p => p.Name == "standardization.std" ? (p.Name, p.Shape, new float[p.Values.Length]) : p).ToList(),
        };
        using var buffer = new MemoryStream();
        VaeModelFormat.Write(buffer, broken);
        buffer.Position = 0;
        FluentActions.Invoking(() => VaeTransformer.Load(ml, buffer, "cpu")).Should().Throw<InvalidDataException>().WithMessage("*standard deviations*");
    }

    [Fact]
    public void Files_written_before_the_likelihood_existed_load_as_Bernoulli_with_their_recorded_outputs()
    {
        // TestData/v2-*: the version-1 test model re-saved by format version 2 (before this option); same weights,
        // so the version-1 recorded outputs apply.
        var ml = new MLContext(seed: 0);
        var folder = Path.Combine(AppContext.BaseDirectory, "Persistence", "TestData");
        var expected = JsonSerializer.Deserialize<JsonElement>(File.ReadAllText(Path.Combine(folder, "legacy-v1-16-8-2.expected.json")));
        float[] Floats(string name) => expected.GetProperty(name).EnumerateArray().Select(e => BitConverter.UInt32BitsToSingle(e.GetUInt32())).ToArray();
        var input = Floats("input");

        var bytes = File.ReadAllBytes(Path.Combine(folder, "v2-16-8-2.safetensors"));
        VaeModelFormat.Read(new MemoryStream(bytes), "v2", bytes.Length).FormatVersion.Should().Be(2);
        using (var vae = VaeTransformer.Load(ml, Path.Combine(folder, "v2-16-8-2.safetensors"), "cpu"))
        {
            vae.Likelihood.Should().Be(VaeLikelihood.Bernoulli);
            vae.Standardization.Should().BeNull();
            vae.Score(input).Should().Equal(Floats("score"));
            vae.Reconstruct(input).Should().Equal(Floats("reconstruction"));
        }

        var model = ml.Model.Load(Path.Combine(folder, "v2-16-8-2.zip"), out _);
        try
        {
            var vae = ((IEnumerable<ITransformer>)model).OfType<VaeTransformer>().Single();
            vae.Likelihood.Should().Be(VaeLikelihood.Bernoulli);
            vae.Score(input).Should().Equal(Floats("score"));
        }
        finally
        {
            ((IEnumerable<ITransformer>)model).OfType<IDisposable>().ToList().ForEach(d => d.Dispose());
        }
    }
}
