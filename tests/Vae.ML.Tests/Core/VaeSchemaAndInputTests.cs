using Microsoft.ML;
using Microsoft.ML.Data;

namespace Vae.ML.Tests.Core;

public class VaeSchemaAndInputTests
{
    private sealed class ScalarRow
    {
        public float Features { get; set; }
    }

    private sealed class DoubleRow
    {
        [VectorType(4)]
        public double[] Features { get; set; } = new double[4];
    }

    private sealed class VariableRow
    {
        public float[] Features { get; set; } = new float[4];
    }

    private sealed class SmallRow
    {
        [VectorType(4)]
        public float[] Features { get; set; } = new float[4];
    }

    private static VaeOptions Options() => new() { HiddenSizes = [8], Epochs = 1, BatchSize = 16, Seed = 1, Device = "cpu" };

    [Fact]
    public void Missing_input_column_is_named_at_GetOutputSchema_and_Fit()
    {
        var ml = new MLContext(seed: 0);
        var data = SyntheticData.Load(ml, 16);
        var options = Options();
        options.FeatureColumnName = "Pixels";
        var trainer = ml.Transforms.Vae(options);

        var schema = () => trainer.GetOutputSchema(Vae.ML.Internals.MlNetInternals.ShapeOf(data.Schema));
        schema.Should().Throw<ArgumentOutOfRangeException>().WithMessage("*'Pixels'*not found*Features*");
        var fit = () => trainer.Fit(data);
        fit.Should().Throw<ArgumentOutOfRangeException>().WithMessage("*'Pixels'*not found*");
    }

    [Fact]
    public void Input_column_of_the_wrong_type_is_rejected()
    {
        var ml = new MLContext(seed: 0);
        var trainer = ml.Transforms.Vae(Options());
        foreach (var data in new IDataView[]
                 {
                     ml.Data.LoadFromEnumerable(new[] { new ScalarRow() }),
                     ml.Data.LoadFromEnumerable(new[] { new DoubleRow() }),
                     ml.Data.LoadFromEnumerable(new[] { new VariableRow() }),
                 })
        {
            var fit = () => trainer.Fit(data);
            fit.Should().Throw<ArgumentOutOfRangeException>().WithMessage("*'Features'*known-size vector of Single*");
            var schema = () => trainer.GetOutputSchema(Vae.ML.Internals.MlNetInternals.ShapeOf(data.Schema));
            schema.Should().Throw<ArgumentOutOfRangeException>().WithMessage("*'Features'*");
        }
    }

    [Theory]
    [InlineData(nameof(VaeOptions.LatentDimension), 0)]
    [InlineData(nameof(VaeOptions.Epochs), 0)]
    [InlineData(nameof(VaeOptions.BatchSize), -1)]
    public void Non_positive_sizes_are_rejected_by_name(string option, int value)
    {
        var options = Options();
        typeof(VaeOptions).GetProperty(option)!.SetValue(options, value);
        var create = () => new MLContext().Transforms.Vae(options);
        create.Should().Throw<ArgumentOutOfRangeException>().Which.ParamName.Should().Be(option);
    }

    [Fact]
    public void Catalog_shortcut_checks_its_arguments_too()
    {
        var ml = new MLContext();
        ((Action)(() => ml.Transforms.Vae(latentDimension: 0))).Should().Throw<ArgumentOutOfRangeException>().Which.ParamName.Should().Be("LatentDimension");
        ((Action)(() => ml.Transforms.Vae(epochs: 0))).Should().Throw<ArgumentOutOfRangeException>().Which.ParamName.Should().Be("Epochs");
        ((Action)(() => ml.Transforms.Vae(batchSize: 0))).Should().Throw<ArgumentOutOfRangeException>().Which.ParamName.Should().Be("BatchSize");
    }

    [Fact]
    public void Output_names_that_collide_with_the_input_or_each_other_are_rejected()
    {
        var ml = new MLContext();
        var sameAsInput = () => ml.Transforms.Vae(outputColumnName: "Features", inputColumnName: "Features");
        sameAsInput.Should().Throw<ArgumentException>().WithMessage("*LatentColumnName 'Features' collides with FeatureColumnName*");

        var options = Options();
        options.ScoreColumnName = "Latent";
        var duplicate = () => ml.Transforms.Vae(options);
        duplicate.Should().Throw<ArgumentException>().WithMessage("*ScoreColumnName 'Latent' collides with LatentColumnName*");
    }

    [Fact]
    public void Bad_device_names_and_learning_rates_are_rejected()
    {
        var ml = new MLContext();
        var options = Options();
        options.Device = "gpu";
        ((Action)(() => ml.Transforms.Vae(options))).Should().Throw<ArgumentOutOfRangeException>().Which.ParamName.Should().Be("Device");
        options = Options();
        options.LearningRate = double.NaN;
        ((Action)(() => ml.Transforms.Vae(options))).Should().Throw<ArgumentOutOfRangeException>().Which.ParamName.Should().Be("LearningRate");
    }

    [Theory]
    [InlineData(float.NaN, "the value is NaN")]
    [InlineData(float.PositiveInfinity, "the value is +infinity")]
    [InlineData(1.5f, "the value 1.5 is outside [0, 1]")]
    [InlineData(-0.1f, "the value -0.1 is outside [0, 1]")]
    public void Bad_values_are_reported_with_their_row_before_training(float bad, string problem)
    {
        var ml = new MLContext(seed: 0);
        var rows = Enumerable.Range(0, 20).Select(_ => new SmallRow { Features = [0.1f, 0.2f, 0.3f, 0.4f] }).ToArray();
        rows[13].Features[2] = bad;
        var data = ml.Data.LoadFromEnumerable(rows);

        var fit = () => ml.Transforms.Vae(Options()).Fit(data);

        fit.Should().Throw<ArgumentException>().WithMessage($"Training data, column 'Features', row 13, element 2: {problem}. Training needs finite values in [0, 1]*NormalizeMinMax*");
    }

    [Fact]
    public void Bad_values_in_streamed_training_data_are_reported_too()
    {
        var ml = new MLContext(seed: 0);
        var rows = Enumerable.Range(0, 20).Select(_ => new SmallRow { Features = [0.1f, 0.2f, 0.3f, 0.4f] }).ToArray();
        rows[7].Features[0] = float.NaN;
        var options = Options();
        options.MaxInMemoryBytes = 0;

        var fit = () => ml.Transforms.Vae(options).Fit(ml.Data.LoadFromEnumerable(rows));

        fit.Should().Throw<ArgumentException>().WithMessage("Training data, column 'Features', row 7, element 0: the value is NaN.*");
    }

    [Fact]
    public void Transform_checks_the_input_size_and_scores_bad_rows_as_NaN()
    {
        var ml = new MLContext(seed: 0);
        using var vae = ml.Transforms.Vae(Options()).Fit(SyntheticData.Load(ml, 32));
        var wrongSize = ml.Data.LoadFromEnumerable(new[] { new SmallRow() });

        ((Action)(() => vae.Transform(wrongSize))).Should().Throw<ArgumentOutOfRangeException>().WithMessage("*4 values per row*trained on 64*");

        var rows = SyntheticData.Rows(10);
        rows[6].Features[5] = float.NaN;
        var scored = vae.Transform(ml.Data.LoadFromEnumerable(rows));
        var scores = scored.GetColumn<float>("Score").ToArray();
        scores[6].Should().Be(float.NaN, "a row with a missing value scores as missing, as in ML.NET");
        scores.Where((_, i) => i != 6).Should().OnlyContain(s => float.IsFinite(s));
    }

    [Fact]
    public void Validation_data_with_another_vector_size_is_rejected()
    {
        var ml = new MLContext(seed: 0);
        var options = Options();
        options.ValidationData = ml.Data.LoadFromEnumerable(new[] { new SmallRow() });
        var fit = () => ml.Transforms.Vae(options).Fit(SyntheticData.Load(ml, 16));
        fit.Should().Throw<ArgumentException>().WithMessage("*ValidationData*4 values per row*64*");
    }

    [Fact]
    public void GetOutputSchema_promises_the_four_columns()
    {
        var ml = new MLContext();
        var shape = ml.Transforms.Vae(Options()).GetOutputSchema(Vae.ML.Internals.MlNetInternals.ShapeOf(SyntheticData.Load(ml, 4).Schema));
        shape.Select(c => c.Name).Should().Contain(["Features", "Label", "Latent", "LatentLogVariance", "Reconstruction", "Score"]);
        shape.First(c => c.Name == "Latent").Kind.Should().Be(SchemaShape.Column.VectorKind.Vector);
        shape.First(c => c.Name == "Score").Kind.Should().Be(SchemaShape.Column.VectorKind.Scalar);
    }
}
