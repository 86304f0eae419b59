using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Vae.ML.Datasets;
using Vae.ML.Samples.Onnx;
using Vae.ML.Tests.Datasets;
using Vae.ML.Tests.Persistence;
using Xunit.Abstractions;
using static Vae.ML.Tests.Onnx.OnnxTestSupport;

namespace Vae.ML.Tests.Onnx;

/// <summary>
/// ExportOnnx: the exported graph, run by ONNX Runtime, gives Vae.ML's outputs (within 1e-5 relative, as
/// <see cref="OnnxAgreement"/> defines it) for every architecture and likelihood, with any batch size and NaN rows.
/// </summary>
[Collection(MnistCollection.Name)]
public class OnnxExportTests(MnistDataFixture mnist, ITestOutputHelper output)
{
    [Fact]
    public void Mlp_Bernoulli_export_matches_libtorch_on_the_full_MNIST_test_set()
    {
        var ml = new MLContext(seed: 0);
        // The report's network (784-400-2, β = 1); one epoch on a slice: the check is export against libtorch, not quality.
        using var vae = ml.Transforms.Vae(new VaeOptions { Epochs = 1, Seed = 0, Device = "cpu" }).Fit(mnist.Train.Take(6000).ToDataView(ml));
        using var session = Session(vae);

        var inputs = mnist.Test.Pixels;
        inputs.Length.Should().Be(10_000 * 784);
        Report(ShouldAgree(vae, session, inputs, batch: 1000));
    }

    public static TheoryData<VaeArchitecture, VaeLikelihood, bool> Variants => new()
    {
        { VaeArchitecture.Convolutional, VaeLikelihood.Bernoulli, false },
        { VaeArchitecture.Mlp, VaeLikelihood.Gaussian, true },
        { VaeArchitecture.Mlp, VaeLikelihood.Gaussian, false },
        { VaeArchitecture.Convolutional, VaeLikelihood.Gaussian, true },
        { VaeArchitecture.Convolutional, VaeLikelihood.Gaussian, false },
    };

    [Theory]
    [MemberData(nameof(Variants))]
    public void Export_matches_libtorch_for_each_architecture_and_likelihood_with_NaN_rows_and_any_batch(
        VaeArchitecture architecture, VaeLikelihood likelihood, bool standardize)
    {
        var ml = new MLContext(seed: 0);
        using var vae = ml.Transforms.Vae(Options(architecture, likelihood, standardize)).Fit(mnist.Train.Take(400).ToDataView(ml));
        vae.Architecture.Should().Be(architecture);
        vae.Likelihood.Should().Be(likelihood);
        using var session = Session(vae);

        // 300 test images, then rows with NaN, +∞ and −∞ in one pixel each.
        var inputs = WithOddRows(mnist.Test.Take(300).Pixels, 784);
        foreach (var batch in new[] { 1, 7, 303 })
        {
            Report(ShouldAgree(vae, session, inputs, batch));
        }

        var score = vae.Score(inputs);
        score[^3..].Should().OnlyContain(s => float.IsNaN(s), "a row with a NaN or infinite value scores NaN");
        score[..^3].Should().OnlyContain(s => float.IsFinite(s));
    }

    [Fact]
    public void ApplyOnnxModel_yields_the_transformers_columns_under_custom_names()
    {
        var ml = new MLContext(seed: 0);
        var options = new VaeOptions
        {
            HiddenSizes = [64], LatentDimension = 3, Epochs = 1, Seed = 0, Device = "cpu", Beta = 0.5,
            FeatureColumnName = "Pixels", LatentColumnName = "Z", LatentLogVarianceColumnName = "ZLogVar",
            ReconstructionColumnName = "Recon", ScoreColumnName = "Anomaly",
        };
        var train = ml.Transforms.CopyColumns("Pixels", Mnist.FeaturesColumnName).Fit(mnist.Train.Take(500).ToDataView(ml));
        using var vae = ml.Transforms.Vae(options).Fit(train.Transform(mnist.Train.Take(500).ToDataView(ml)));
        using var folder = new ScratchDirectory();
        var path = folder.File("vae.onnx");
        vae.ExportOnnx(path);

        var test = train.Transform(WithOddRowsView(ml, mnist.Test.Take(100).Pixels));
        var viaOnnx = ml.Transforms.ApplyOnnxModel(path).Fit(test).Transform(test);
        var viaTorch = vae.Transform(test);

        foreach (var column in new[] { "Z", "ZLogVar", "Recon" })
        {
            var type = (VectorDataViewType)viaOnnx.Schema[column].Type;
            type.ItemType.Should().Be(NumberDataViewType.Single);
            type.Size.Should().Be(((VectorDataViewType)viaTorch.Schema[column].Type).Size, $"column {column} has the transformer's size");
            var onnx = viaOnnx.GetColumn<float[]>(column).SelectMany(r => r).ToArray();
            var torch = viaTorch.GetColumn<float[]>(column).SelectMany(r => r).ToArray();
            OnnxAgreement.WorstRelativeError(onnx, torch, floor: 1).Should().BeLessThanOrEqualTo(OnnxAgreement.Tolerance, column);
        }

        // ONNX Runtime's outputs are tensors: the transformer's scalar Score arrives as a one-value vector.
        var onnxScores = viaOnnx.GetColumn<float[]>("Anomaly").Select(r => r.Single()).ToArray();
        var torchScores = viaTorch.GetColumn<float>("Anomaly").ToArray();
        OnnxAgreement.WorstRelativeError(onnxScores, torchScores, floor: 1).Should().BeLessThanOrEqualTo(OnnxAgreement.Tolerance);
        torchScores[^3..].Should().OnlyContain(s => float.IsNaN(s));
    }

    [Fact]
    public void The_model_declares_the_columns_a_dynamic_batch_and_its_opset()
    {
        var ml = new MLContext(seed: 0);
        using var vae = PersistenceFixtures.Train(ml); // SmallOptions: Latent named "Z", Score "Anomaly"
        using var session = Session(vae);

        session.InputMetadata.Keys.Should().Equal("Features");
        session.InputMetadata["Features"].Dimensions.Should().Equal(-1, 64);
        session.InputMetadata["Features"].SymbolicDimensions[0].Should().Be("N");
        session.OutputNames.Should().Equal("Z", "LatentLogVariance", "Reconstruction", "Anomaly");
        session.OutputMetadata["Z"].Dimensions.Should().Equal(-1, 3);
        session.OutputMetadata["Reconstruction"].Dimensions.Should().Equal(-1, 64);
        session.OutputMetadata["Anomaly"].Dimensions.Should().Equal(-1);
        session.ModelMetadata.ProducerName.Should().Be("Vae.ML");
        session.ModelMetadata.CustomMetadataMap["vae.likelihood"].Should().Be("Bernoulli");
        session.ModelMetadata.CustomMetadataMap.Should().NotContainKey("vae.score_offset", "a Bernoulli score adds no constant");

        var model = Vae.ML.Onnx.Protobuf.ModelProto.Parser.ParseFrom(ExportBytes(vae));
        model.OpsetImport.Single(o => o.Domain == "").Version.Should().BeGreaterThanOrEqualTo(13);
    }

    [Fact]
    public void Bad_destinations_and_colliding_names_fail_clearly()
    {
        var ml = new MLContext(seed: 0);
        using var vae = PersistenceFixtures.Train(ml);
        using var folder = new ScratchDirectory();

        vae.Invoking(v => v.ExportOnnx((Stream)null!)).Should().Throw<ArgumentNullException>();
        using (var readOnly = new MemoryStream(new byte[8], writable: false))
        {
            vae.Invoking(v => v.ExportOnnx(readOnly)).Should().Throw<ArgumentException>().WithMessage("*writable*");
        }

        vae.Invoking(v => v.ExportOnnx(" ")).Should().Throw<ArgumentException>();
        vae.Invoking(v => v.ExportOnnx(folder.Path)).Should().Throw<IOException>().WithMessage("*directory*");

        // A column named like one of the network's parameters cannot share ONNX's single namespace of values.
        var options = PersistenceFixtures.SmallOptions();
        options.LatentColumnName = "fc1.weight";
        using var clash = PersistenceFixtures.Train(ml, options, rows: 64);
        clash.Invoking(v => v.ExportOnnx(new MemoryStream())).Should().Throw<InvalidOperationException>().WithMessage("*'fc1.weight'*rename the column*");
    }

    private static VaeOptions Options(VaeArchitecture architecture, VaeLikelihood likelihood, bool standardize) => new()
    {
        Architecture = architecture,
        ImageShape = architecture == VaeArchitecture.Convolutional ? [1, 28, 28] : null,
        HiddenSizes = [32],
        LatentDimension = 2,
        Likelihood = likelihood,
        StandardizeFeatures = standardize,
        Beta = 0.8,
        Epochs = 1,
        BatchSize = 64,
        Seed = 0,
        Device = "cpu",
    };

    private static byte[] ExportBytes(VaeTransformer vae)
    {
        using var stream = new MemoryStream();
        vae.ExportOnnx(stream);
        return stream.ToArray();
    }

    /// <summary>The rows followed by three rows that each hold one NaN, +∞ or −∞.</summary>
    private static float[] WithOddRows(float[] rows, int width)
    {
        var odd = new float[3 * width];
        odd[10] = float.NaN;
        odd[width + 400] = float.PositiveInfinity;
        odd[2 * width + 783] = float.NegativeInfinity;
        return [.. rows, .. odd];
    }

    private static IDataView WithOddRowsView(MLContext ml, float[] pixels)
    {
        var all = WithOddRows(pixels, 784);
        var images = new MnistImages(28, 28, all, new byte[all.Length / 784]);
        return images.ToDataView(ml);
    }

    private void Report(Dictionary<string, double> worst)
    {
        foreach (var (name, error) in worst)
        {
            output.WriteLine($"{name}: worst relative error {error:E2}");
        }
    }
}
