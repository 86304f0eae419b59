using Vae.ML.Samples.Analysis;
using Vae.ML.Samples.Reporting;

namespace Vae.ML.Tests.Samples;

public class GaussianQuantileTests
{
    [Theory]
    [InlineData(0.5, 0.0)]
    [InlineData(0.95, 1.6448536269514722)]
    [InlineData(0.05, -1.6448536269514722)]
    [InlineData(0.975, 1.959963984540054)]
    [InlineData(0.01, -2.3263478740408408)]
    [InlineData(0.999, 3.090232306167813)]
    [InlineData(0.8413447460685429, 1.0)]
    public void Inverse_matches_tabulated_normal_quantiles(double probability, double expected)
    {
        GaussianQuantile.Inverse(probability).Should().BeApproximately(expected, 1e-8);
    }

    [Fact]
    public void Grid_spans_the_5_to_95_percent_quantiles_symmetrically()
    {
        double[] grid = GaussianQuantile.Grid(20);

        grid.Should().HaveCount(20);
        grid[0].Should().BeApproximately(-1.6448536, 1e-6);
        grid[^1].Should().BeApproximately(1.6448536, 1e-6);
        grid.Should().BeInAscendingOrder();
        for (int i = 0; i < grid.Length; i++)
        {
            grid[i].Should().BeApproximately(-grid[^(i + 1)], 1e-9);
        }
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(1.0)]
    [InlineData(double.NaN)]
    public void Inverse_rejects_probabilities_outside_the_open_unit_interval(double probability)
    {
        FluentActions.Invoking(() => GaussianQuantile.Inverse(probability)).Should().Throw<ArgumentOutOfRangeException>();
    }
}

public class TrainingCurveAnalysisTests
{
    private static List<EpochRecord> Curve(params double[] losses) =>
        losses.Select((loss, i) => new EpochRecord
        {
            Epoch = i + 1,
            TrainLoss = loss,
            TrainReconstructionLoss = loss - 5,
            TrainKlDivergence = 5,
            Seconds = 1,
        }).ToList();

    [Fact]
    public void A_strictly_falling_curve_is_monotone_and_converges_where_improvements_drop_below_one_percent()
    {
        // Total drop 100; improvements: 50, 30, 10, 5, 2 (>= 1), then 0.9, 0.5, 0.3 (< 1).
        var curve = Curve(200, 150, 120, 110, 105, 103, 102.1, 101.6, 100);

        TrainingCurveSummary summary = TrainingCurveAnalysis.Summarize(curve);

        summary.TrainLossMonotone.Should().BeTrue();
        summary.TrainLossIncreases.Should().BeEmpty();
        summary.TrainLossTotalDrop.Should().BeApproximately(100, 1e-9);
        // Epoch 8 -> 9 improves by 1.6 (>= 1), so the curve has converged only from epoch 9 on.
        summary.ConvergenceEpoch.Should().Be(9);
    }

    [Fact]
    public void Convergence_is_the_first_epoch_after_which_every_improvement_is_small()
    {
        var curve = Curve(200, 150, 120, 110, 105, 103, 102.5, 102.2, 102.0, 101.9);

        TrainingCurveAnalysis.ConvergenceEpoch(curve).Should().Be(6, "after epoch 6 each step improves by < 1% of the 98.1 total drop");
    }

    [Fact]
    public void An_increase_is_reported_with_its_epoch()
    {
        var curve = Curve(200, 150, 151, 140);

        TrainingCurveSummary summary = TrainingCurveAnalysis.Summarize(curve);

        summary.TrainLossMonotone.Should().BeFalse();
        summary.TrainLossIncreases.Should().Equal(3);
    }

    [Fact]
    public void Convergence_is_undefined_for_one_epoch_or_a_rising_curve()
    {
        TrainingCurveAnalysis.ConvergenceEpoch(Curve(200)).Should().BeNull();
        TrainingCurveAnalysis.ConvergenceEpoch(Curve(100, 110)).Should().BeNull();
    }
}

public class LatentSeparationTests
{
    [Fact]
    public void Far_apart_clusters_are_perfectly_separated()
    {
        var random = new Random(1);
        const int perClass = 50;
        var latents = new List<float>();
        var labels = new List<byte>();
        for (byte digit = 0; digit < 10; digit++)
        {
            for (int i = 0; i < perClass; i++)
            {
                latents.Add(digit * 10 + (float)random.NextDouble());
                latents.Add((float)random.NextDouble());
                labels.Add(digit);
            }
        }

        LatentSeparationSummary summary = LatentSeparation.Measure(latents.ToArray(), 2, labels.ToArray());

        summary.NearestNeighbourAccuracy.Should().Be(1.0);
        summary.Silhouette.Should().BeGreaterThan(0.8);
        summary.Images.Should().Be(500);
        summary.NeighbourCount.Should().Be(5);
    }

    [Fact]
    public void Labels_unrelated_to_position_score_near_chance()
    {
        var random = new Random(2);
        const int count = 2000;
        float[] latents = Enumerable.Range(0, count * 2).Select(_ => (float)random.NextDouble()).ToArray();
        byte[] labels = Enumerable.Range(0, count).Select(_ => (byte)random.Next(10)).ToArray();

        LatentSeparationSummary summary = LatentSeparation.Measure(latents, 2, labels);

        // Chance is 1/10; over 2,000 points the accuracy's standard deviation is √(0.1·0.9/2000) ≈ 0.007: 4σ = 0.03.
        summary.NearestNeighbourAccuracy.Should().BeApproximately(0.1, 0.03);
        summary.Silhouette.Should().BeInRange(-0.2, 0.05);
    }

    [Fact]
    public void Nearest_neighbour_vote_is_exact_on_a_hand_checked_example()
    {
        // 1-D points: 0, 1, 2 are class 0; 10, 11 and 5 are class 1. With k = 3 the point at 5 has the neighbours
        // 2, 1 and 0 or 10 (both at distance 5): class 0 wins either way, so it is the only misclassified point.
        float[] latents = [0, 1, 2, 10, 11, 5];
        byte[] labels = [0, 0, 0, 1, 1, 1];

        LatentSeparationSummary summary = LatentSeparation.Measure(latents, 1, labels, neighbourCount: 3);

        summary.NearestNeighbourAccuracy.Should().BeApproximately(5.0 / 6, 1e-12);
    }

    [Fact]
    public void Silhouette_is_exact_on_a_hand_checked_example()
    {
        // Class 0 at 0 and 1, class 1 at 10 and 11 (1-D). Point 0: a = 1, b = (10 + 11) / 2 = 10.5, s = 9.5 / 10.5;
        // point 1: a = 1, b = (9 + 10) / 2 = 9.5, s = 8.5 / 9.5; the other two mirror these.
        LatentSeparationSummary summary = LatentSeparation.Measure(new float[] { 0, 1, 10, 11 }, 1, new byte[] { 0, 0, 1, 1 }, neighbourCount: 1);

        summary.Silhouette.Should().BeApproximately((9.5 / 10.5 + 8.5 / 9.5) / 2, 1e-12);
        summary.NearestNeighbourAccuracy.Should().Be(1.0);
    }

    [Fact]
    public void Sizes_that_do_not_match_are_rejected_with_the_counts()
    {
        FluentActions.Invoking(() => LatentSeparation.Measure(new float[5], 2, new byte[3]))
            .Should().Throw<ArgumentException>().WithMessage("*3 points x 2 dimensions = 6*got 5*");
    }

    [Fact]
    public void Non_finite_latents_are_rejected_naming_the_point()
    {
        float[] latents = [0, 0, 1, float.NaN];
        FluentActions.Invoking(() => LatentSeparation.Measure(latents, 2, new byte[] { 0, 1 }))
            .Should().Throw<ArgumentException>().WithMessage("*point 1, dimension 1*");
    }
}

public class PixelNearestNeighboursTests
{
    [Fact]
    public void Votes_follow_the_nearest_reference_images()
    {
        // 4-pixel "images": three references of label 0 near (0,0,0,0), two of label 1 near (1,1,1,1).
        float[] references =
        [
            0, 0, 0, 0,
            0.1f, 0, 0, 0,
            0, 0.1f, 0, 0,
            1, 1, 1, 1,
            0.9f, 1, 1, 1,
        ];
        byte[] labels = [0, 0, 0, 1, 1];
        var judge = new PixelNearestNeighbours(references, labels, pixelsPerImage: 4, neighbourCount: 3);

        NeighbourVote[] votes = judge.Classify([0.05f, 0, 0, 0, /**/ 1, 1, 0.9f, 1, /**/ 0.5f, 0.5f, 0.5f, 0.6f]);

        votes[0].Should().Be(new NeighbourVote(0, 1.0));
        votes[1].Should().Be(new NeighbourVote(1, 2.0 / 3));
        votes[2].Label.Should().Be(1, "(0.5, 0.5, 0.5, 0.6) is nearer to both label-1 references than to any label-0 one");
        votes[2].Agreement.Should().BeApproximately(2.0 / 3, 1e-12);
    }

    [Fact]
    public void Mismatched_sizes_are_rejected()
    {
        FluentActions.Invoking(() => new PixelNearestNeighbours(new float[7], new byte[2], 4, 1))
            .Should().Throw<ArgumentException>().WithMessage("*2 reference images x 4 pixels = 8 values, got 7*");
        var judge = new PixelNearestNeighbours(new float[8], new byte[2], 4, 1);
        FluentActions.Invoking(() => judge.Classify(new float[6])).Should().Throw<ArgumentException>().WithMessage("*6 values*4-pixel*");
    }
}
