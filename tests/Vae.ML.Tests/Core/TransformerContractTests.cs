using Microsoft.ML;
using Microsoft.ML.Data;
using Vae.ML.Tests.Reliability;

namespace Vae.ML.Tests.Core;

/// <summary>
/// The transformer's public surface on one small trained model: what it reports about itself, the array API's
/// argument rules, sampling, the log-likelihood's argument checks and ONNX export's destinations. Written for the
/// Stryker run on the root files (docs/testing.md, "Mutation testing"); the MNIST tests cover the same calls only on
/// slow models, outside the run's filter.
/// </summary>
public class TransformerContractTests(ScoringModelFixture fixture) : IClassFixture<ScoringModelFixture>
{
    private VaeTransformer Vae => fixture.Vae;

    [Fact]
    public void The_transformer_reports_the_configuration_it_was_trained_with()
    {
        // The fixture: 64 inputs, HiddenSizes [16], latent 2, default columns, β 1, Bernoulli, MLP, CPU.
        Vae.InputSize.Should().Be(SyntheticData.Width);
        Vae.LatentDimension.Should().Be(2);
        Vae.HiddenSizes.Should().Equal(16);
        Vae.Likelihood.Should().Be(VaeLikelihood.Bernoulli);
        Vae.Architecture.Should().Be(VaeArchitecture.Mlp);
        Vae.ImageShape.Should().BeNull();
        Vae.Beta.Should().Be(1.0);
        Vae.Device.Should().Be("cpu");
        Vae.Standardization.Should().BeNull("a Bernoulli model reads its inputs as they are");
        Vae.IsRowToRowMapper.Should().BeTrue();
        (Vae.FeatureColumnName, Vae.LatentColumnName, Vae.LatentLogVarianceColumnName, Vae.ReconstructionColumnName, Vae.ScoreColumnName)
            .Should().Be(("Features", "Latent", "LatentLogVariance", "Reconstruction", "Score"));
        Vae.History.Should().HaveCount(3).And.OnlyContain(m => m.TotalEpochs == 3);
        Vae.History.Select(m => m.Epoch).Should().Equal(1, 2, 3);
    }

    [Fact]
    public void Encoding_with_log_variances_gives_the_same_means_and_one_log_variance_per_latent_value()
    {
        var inputs = SyntheticData.Matrix(SyntheticData.Rows(3, seed: 11));

        var meansOnly = Vae.Encode(inputs);
        var means = Vae.Encode(inputs, out var logVariances);

        meansOnly.Should().HaveCount(3 * 2).And.Equal(means);
        logVariances.Should().HaveCount(3 * 2).And.OnlyContain(v => float.IsFinite(v));
        logVariances.Should().NotEqual(means, "the second encoder head is not the first");
        Vae.Encode(ReadOnlySpan<float>.Empty).Should().BeEmpty();
    }

    [Fact]
    public void Sampling_refuses_a_negative_count_and_repeats_with_a_seed()
    {
        Vae.Invoking(v => v.Sample(-1)).Should().Throw<ArgumentOutOfRangeException>().WithParameterName("count");

        var first = Vae.Sample(3, seed: 4);
        first.Should().HaveCount(3 * SyntheticData.Width).And.OnlyContain(p => p >= 0 && p <= 1);
        Vae.Sample(3, seed: 4).Should().Equal(first);
        Vae.Sample(3).Should().HaveCount(3 * SyntheticData.Width);
    }

    [Fact]
    public void Transforming_null_is_refused()
        => Vae.Invoking(v => v.Transform(null!)).Should().Throw<ArgumentNullException>().WithParameterName("input");

    [Fact]
    public void The_log_likelihood_checks_its_arguments_and_names_the_data()
    {
        var ml = fixture.Context;
        var rows = ml.Data.LoadFromEnumerable(SyntheticData.Rows(2, seed: 12));

        Vae.Invoking(v => v.LogLikelihoodPerRow(null!)).Should().Throw<ArgumentNullException>().WithParameterName("data");
        Vae.Invoking(v => v.LogLikelihoodPerRow(rows, samples: 0)).Should().Throw<ArgumentOutOfRangeException>().WithParameterName("samples");
        Vae.LogLikelihoodPerRow(rows, samples: 1, seed: 1).Should().HaveCount(2).And.OnlyContain(v => double.IsFinite(v));
        Vae.LogLikelihoodPerRow(rows, samples: 2).Should().HaveCount(2, "without a seed the estimate still runs");

        var empty = ml.Data.LoadFromEnumerable(Array.Empty<SyntheticData.Row>());
        Vae.LogLikelihoodPerRow(empty).Should().BeEmpty();
        Vae.Invoking(v => v.LogLikelihood(empty)).Should().Throw<ArgumentException>().WithMessage("*no rows*").WithParameterName("data");

        var narrow = ml.Data.LoadFromEnumerable(SyntheticData.Rows(2, seed: 12, width: 63), SchemaOfWidth(63));
        Vae.Invoking(v => v.LogLikelihoodPerRow(narrow)).Should().Throw<ArgumentOutOfRangeException>()
            .WithMessage("*'Features' has 63 values per row; this model was trained on 64*").WithParameterName("data");
    }

    [Fact]
    public void A_bad_row_in_the_log_likelihood_data_is_named_with_its_data_column_and_row()
    {
        var rows = SyntheticData.Rows(3, seed: 13);
        rows[1].Features[4] = float.NaN;

        Vae.Invoking(v => v.LogLikelihoodPerRow(fixture.Context.Data.LoadFromEnumerable(rows))).Should().Throw<ArgumentException>()
            .WithMessage("LogLikelihood data, column 'Features', row 1, element 4: the value is NaN.*");
    }

    [Fact]
    public void Each_row_of_a_batch_is_estimated_from_its_own_values()
    {
        // One row unlike the others first, then two ordinary ones: in a batch of three each gets the estimate it gets
        // alone. The same quantity from other noise: with 64 samples the two differ by about 0.1 nat here, the three
        // rows' estimates by 2 to 4 nats.
        var rows = SyntheticData.Rows(3, seed: 14);
        rows[0] = new SyntheticData.Row { Features = Enumerable.Repeat(0.95f, SyntheticData.Width).ToArray() };
        var together = Vae.LogLikelihoodPerRow(fixture.Context.Data.LoadFromEnumerable(rows), samples: 64, seed: 3);

        for (var i = 0; i < rows.Length; i++)
        {
            var alone = Vae.LogLikelihoodPerRow(fixture.Context.Data.LoadFromEnumerable(rows[i..(i + 1)]), samples: 64, seed: 4)[0];
            together[i].Should().BeApproximately(alone, 0.5, "row {0}", i);
        }

        together[0].Should().BeLessThan(together[1..].Min(), "the odd row is the least likely");
    }

    [Fact]
    public void Onnx_export_to_a_file_writes_the_same_model_as_to_a_stream()
    {
        var path = Path.Combine(Path.GetTempPath(), $"vae-contract-{Guid.NewGuid():N}.onnx");
        try
        {
            Vae.ExportOnnx(path);
            using var stream = new MemoryStream();
            Vae.ExportOnnx(stream);

            File.ReadAllBytes(path).Should().NotBeEmpty().And.Equal(stream.ToArray());
        }
        finally
        {
            File.Delete(path);
        }

        using var readOnly = new MemoryStream(new byte[8], writable: false);
        Vae.Invoking(v => v.ExportOnnx(readOnly)).Should().Throw<ArgumentException>().WithParameterName("stream");
        Vae.Invoking(v => v.ExportOnnx((Stream)null!)).Should().Throw<ArgumentNullException>();
        Vae.Invoking(v => v.ExportOnnx(" ")).Should().Throw<ArgumentException>().WithParameterName("path");
    }

    private static SchemaDefinition SchemaOfWidth(int width)
    {
        var definition = SchemaDefinition.Create(typeof(SyntheticData.Row));
        definition[nameof(SyntheticData.Row.Features)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, width);
        return definition;
    }
}
