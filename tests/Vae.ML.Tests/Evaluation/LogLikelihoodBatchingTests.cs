using Vae.ML.Tests.Core;
using Vae.ML.Tests.Reliability;

namespace Vae.ML.Tests.Evaluation;

/// <summary>
/// The importance-weighted estimate reads rows in batches of 128: a batch boundary neither drops nor repeats a row.
/// Small synthetic data (the MNIST tests cover the values themselves); written for the root files' Stryker run.
/// </summary>
public class LogLikelihoodBatchingTests(ScoringModelFixture fixture) : IClassFixture<ScoringModelFixture>
{
    [Theory]
    [InlineData(1)]
    [InlineData(128)]
    [InlineData(129)]
    public void Every_row_gets_one_estimate_whatever_the_batch_boundaries(int count)
    {
        var ml = fixture.Context;
        var rows = SyntheticData.Rows(count, seed: 41);

        var perRow = fixture.Vae.LogLikelihoodPerRow(ml.Data.LoadFromEnumerable(rows), samples: 4, seed: 7);

        perRow.Should().HaveCount(count).And.OnlyContain(v => double.IsFinite(v) && v < 0);
        fixture.Vae.LogLikelihood(ml.Data.LoadFromEnumerable(rows), samples: 4, seed: 7).Should().Be(perRow.Average());
    }

    [Fact]
    public void Rows_after_a_full_batch_are_estimated_from_their_own_values()
    {
        var ml = fixture.Context;
        var rows = SyntheticData.Rows(129, seed: 42);
        rows[128] = new SyntheticData.Row { Features = Enumerable.Repeat(0.95f, SyntheticData.Width).ToArray() }; // unlike any other row
        var full = fixture.Vae.LogLikelihoodPerRow(ml.Data.LoadFromEnumerable(rows), samples: 4, seed: 7);
        var firstBatch = fixture.Vae.LogLikelihoodPerRow(ml.Data.LoadFromEnumerable(rows[..128]), samples: 4, seed: 7);

        // The first batch draws the same noise either way; the 129th row is a fresh batch of one.
        full[..128].Should().Equal(firstBatch);
        var lastAlone = fixture.Vae.LogLikelihoodPerRow(ml.Data.LoadFromEnumerable(rows[128..]), samples: 64, seed: 8)[0];
        full[128].Should().BeApproximately(lastAlone, Math.Abs(lastAlone) * 0.1, "an estimate of the same row");
        full[128].Should().BeLessThan(full[..128].Min(), "the odd row is the least likely one");
    }
}
