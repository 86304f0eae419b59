using Microsoft.ML;
using Microsoft.ML.Data;
using Vae.ML.Data;

namespace Vae.ML.Tests.Data;

/// <summary>
/// The in-memory matrix's size limit at its exact bound and how often a row reader checks for cancellation. Written
/// for surviving Stryker mutants of <c>FeatureColumn</c> (docs/testing.md, "Mutation testing").
/// </summary>
public class FeatureReadingLimitsTests
{
    [Fact]
    public void A_matrix_of_exactly_the_largest_size_is_allocated_and_one_value_more_is_refused()
    {
        var ml = new MLContext(seed: 0);
        var narrow = ml.Data.LoadFromEnumerable(Array.Empty<Narrow>());
        var wide = ml.Data.LoadFromEnumerable(Array.Empty<Wide>());
        FeatureMatrix.MaxValues.Should().Be(536_870_911, "int.MaxValue bytes of floats");

        // At the bound the (uninitialised, so only reserved) matrix is allocated and the reader then finds no rows.
        var atTheBound = () => FeatureColumn.ReadAll(narrow, "Features", 1, 536_870_911, "Training data", () => { }).Dispose();
        atTheBound.Should().Throw<InvalidOperationException>().WithMessage("Training data returned 0 rows, not the 536870911 it reported.");

        // One value past it is refused before anything is allocated, whichever dimension makes the product large.
        var pastTheBound = () => FeatureColumn.ReadAll(wide, "Features", 2, 268_435_456, "Training data", () => { }).Dispose();
        pastTheBound.Should().Throw<ArgumentException>()
            .WithMessage("Training data has 268435456 rows of 2 values: more than the 536870911 values one in-memory matrix holds.*MaxInMemoryBytes*");
    }

    [Fact]
    public void Reading_rows_checks_for_cancellation_once_every_256_rows()
    {
        var ml = new MLContext(seed: 0);
        var view = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 600).Select(i => new Narrow { Features = [i / 600f] }).ToArray());
        var checks = new List<int>();
        var read = 0;

        foreach (var row in FeatureColumn.ReadRows(view, "Features", 1, "Training data", () => checks.Add(read)))
        {
            row.Should().Equal(read / 600f);
            read++;
        }

        read.Should().Be(600);
        checks.Should().Equal([0, 256, 512], "before rows 0, 256 and 512");
    }

    private sealed class Narrow
    {
        [VectorType(1)]
        public float[] Features { get; set; } = [];
    }

    private sealed class Wide
    {
        [VectorType(2)]
        public float[] Features { get; set; } = [];
    }
}
