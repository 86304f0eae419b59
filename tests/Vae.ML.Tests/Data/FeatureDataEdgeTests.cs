using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using Vae.ML.Data;

namespace Vae.ML.Tests.Data;

/// <summary>
/// The feature readers' and the scoring tally's rules, one value at a time: the [0, 1] bounds themselves, sparse
/// vectors, the row and element a bad value is reported at, row counting without a known count, and the warning text.
/// Written for surviving Stryker mutants (docs/testing.md, "Mutation testing"); the expected values are written out.
/// </summary>
public class FeatureDataEdgeTests
{
    [Theory]
    [InlineData(0f, true)]
    [InlineData(1f, true)]
    [InlineData(0.5f, true)]
    [InlineData(-1e-7f, false)]
    [InlineData(1.0000001f, false)]
    [InlineData(float.NaN, false)]
    public void The_training_range_includes_both_bounds(float value, bool inRange)
        => FeatureColumn.IsInTrainingRange(value).Should().Be(inRange);

    [Fact]
    public void Rows_are_classified_by_their_smallest_and_largest_value()
    {
        FeatureColumn.Classify([]).Should().Be(RowValues.InRange);
        FeatureColumn.Classify([0f, 1f, 0.5f]).Should().Be(RowValues.InRange);
        FeatureColumn.Classify([0.5f, 1.5f, 0.5f]).Should().Be(RowValues.OutOfRange);
        FeatureColumn.Classify([0.5f, -0.5f, 0.5f]).Should().Be(RowValues.OutOfRange);
        FeatureColumn.Classify([0.5f, float.NaN, 0.5f]).Should().Be(RowValues.NotFinite);
        FeatureColumn.Classify([0.5f, float.PositiveInfinity]).Should().Be(RowValues.NotFinite);
        FeatureColumn.Classify([float.NegativeInfinity, 0.5f]).Should().Be(RowValues.NotFinite);
        FeatureColumn.Classify([-3f, 7f], unitRange: false).Should().Be(RowValues.InRange);
        FeatureColumn.Classify([-3f, float.NaN], unitRange: false).Should().Be(RowValues.NotFinite);
    }

    [Fact]
    public void A_sparse_vector_is_copied_dense_with_zeros_elsewhere()
    {
        var sparse = new VBuffer<float>(6, 2, [0.25f, 0.75f], [1, 4]);
        var dense = new float[] { 9, 9, 9, 9, 9, 9 };

        FeatureColumn.CopyValidated(sparse, dense, "Features", 3, "Training data");

        dense.Should().Equal(0f, 0.25f, 0f, 0f, 0.75f, 0f);
    }

    [Fact]
    public void A_vector_of_the_wrong_length_names_the_data_column_and_row()
    {
        var copy = () => FeatureColumn.CopyDense(new VBuffer<float>(3, [0f, 0f, 0f]), new float[4], "Pixels", 12, "Validation data");

        copy.Should().Throw<ArgumentException>().WithMessage("Validation data, column 'Pixels', row 12: vector has 3 values; expected 4.");
    }

    [Theory]
    [InlineData(VaeLikelihood.Bernoulli, 1.5f, "*row 7, element 2: the value 1.5 is outside [0, 1]*")]
    [InlineData(VaeLikelihood.Bernoulli, float.NaN, "*row 7, element 2: the value is NaN*")]
    [InlineData(VaeLikelihood.Bernoulli, float.NegativeInfinity, "*row 7, element 2: the value is -infinity*")]
    [InlineData(VaeLikelihood.Gaussian, float.PositiveInfinity, "*row 7, element 2: the value is +infinity*")]
    [InlineData(VaeLikelihood.Gaussian, float.NaN, "*row 7, element 2: the value is NaN*")]
    public void A_bad_value_is_reported_at_its_row_and_element(VaeLikelihood likelihood, float bad, string message)
    {
        var row = new VBuffer<float>(4, [0.5f, 0.5f, bad, 0.5f]);

        var copy = () => FeatureColumn.CopyValidated(row, new float[4], "Features", 7, "Training data", likelihood);

        copy.Should().Throw<ArgumentException>().WithMessage(message);
    }

    [Fact]
    public void The_Gaussian_likelihood_accepts_any_finite_value()
    {
        var dense = new float[3];

        FeatureColumn.CopyValidated(new VBuffer<float>(3, [-40f, 0f, 1e6f]), dense, "Features", 0, "Training data", VaeLikelihood.Gaussian);

        dense.Should().Equal(-40f, 0f, 1e6f);
    }

    [Fact]
    public void Rows_are_counted_by_a_cursor_when_the_view_does_not_know_its_count()
    {
        var ml = new MLContext(seed: 0);
        var rows = Enumerable.Range(0, 5000).Select(i => new Row { Features = [i % 2], Value = i % 2 });
        var view = ml.Data.FilterRowsByColumn(ml.Data.LoadFromEnumerable(rows), "Value", lowerBound: 0, upperBound: 2);
        view.GetRowCount().Should().BeNull("a filter cannot know its count without a pass");
        var checks = 0;

        FeatureColumn.CountRows(view, () => checks++).Should().Be(5000);
        checks.Should().Be(2, "cancellation is checked once every 4,096 rows, at rows 0 and 4,096");
        FeatureColumn.CountRows(ml.Data.LoadFromEnumerable(rows.Take(3).ToArray()), () => checks++).Should().Be(3);
    }

    [Fact]
    public void A_view_that_returns_fewer_rows_than_it_reported_is_an_error()
    {
        var ml = new MLContext(seed: 0);
        var view = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 4).Select(_ => new Row { Features = [0.5f] }).ToArray());

        var tooFew = () => FeatureColumn.ReadAll(view, "Features", 1, 5, "Training data", () => { });
        var tooMany = () => FeatureColumn.ReadAll(view, "Features", 1, 3, "Training data", () => { });

        tooFew.Should().Throw<InvalidOperationException>().WithMessage("Training data returned 4 rows, not the 5 it reported.");
        tooMany.Should().Throw<InvalidOperationException>().WithMessage("Training data returned more rows than the 3 it reported.");
        using var all = FeatureColumn.ReadAll(view, "Features", 1, 4, "Training data", () => { });
        all.AllValues.ToArray().Should().Equal(0.5f, 0.5f, 0.5f, 0.5f);
    }

    [Fact]
    public void A_feature_matrix_batches_every_row_once_with_a_short_last_batch()
    {
        using var matrix = FeatureMatrix.Allocate(rows: 7, width: 2);
        for (var i = 0; i < 14; i++)
        {
            matrix.AllValues[i] = i;
        }

        matrix.RowSpan(2, 2).ToArray().Should().Equal(4f, 5f, 6f, 7f);
        // The batch buffer is reused: copy each batch's valid rows × width values as it comes.
        var batches = matrix.ReadShuffled(batchSize: 3, seed: 1).Select(b => (b.Rows, Values: b.Values.AsSpan(0, b.Rows * 2).ToArray())).ToList();

        batches.Select(b => b.Rows).Should().Equal(3, 3, 1);
        var rows = batches.SelectMany(b => b.Values.Chunk(2)).ToList();
        rows.Should().OnlyContain(r => r[1] == r[0] + 1, "a row's two values stay together");
        rows.Select(r => (int)r[0] / 2).Order().Should().Equal(0, 1, 2, 3, 4, 5, 6);
    }

    [Fact]
    public void The_tally_counts_each_kind_and_warns_once_with_both_parts()
    {
        var warnings = new List<string>();
        var ml = new MLContext(seed: 0);
        ml.Log += (_, e) =>
        {
            if (e.Kind == ChannelMessageKind.Warning && e.Message.Contains("rows had", StringComparison.Ordinal))
            {
                warnings.Add(e.Message);
            }
        };
        var tally = new ScoringTally(ml, "pass");

        tally.Count([RowValues.InRange, RowValues.OutOfRange, RowValues.NotFinite, RowValues.OutOfRange]);
        tally.Count(RowValues.InRange);

        (tally.Rows, tally.OutOfRange, tally.NotFinite).Should().Be((5L, 2L, 1L));
        tally.Report();
        tally.Report();
        warnings.Should().ContainSingle().Which.Should().Contain(
            "pass: 2 of 5 rows had values outside [0, 1], the range the VAE was trained on; they were scored as they are, but binary cross-entropy")
            .And.Contain("(scale pixels by 1/255, or add NormalizeMinMax before the VAE); 1 of 5 rows had NaN or infinite values; their outputs are NaN.");

        var clean = new ScoringTally(ml, "clean");
        clean.Count([RowValues.InRange, RowValues.InRange]);
        clean.Report();
        warnings.Should().HaveCount(1, "a pass without odd rows stays quiet");
        ScoringTally.Describe("p", 3, 0, 2).Should().Be("p: 2 of 3 rows had NaN or infinite values; their outputs are NaN.");
    }

    private sealed class Row
    {
        [VectorType(1)]
        public float[] Features { get; set; } = [];

        public float Value { get; set; }
    }
}
