using Microsoft.ML;
using SkiaSharp;
using Vae.ML.Samples.Anomaly;
using Vae.ML.Tests.Samples;

namespace Vae.ML.Tests.Anomaly;

/// <summary>The <c>vae-ml anomaly</c> sample: the shipped data, the ROC helper against ML.NET's evaluator, the command.</summary>
public class AnomalySampleTests
{
    [Fact]
    public void Shipped_breast_cancer_data_has_the_documented_shape_and_class_coding()
    {
        BreastCancerRow[] rows = BreastCancerData.Load();

        rows.Should().HaveCount(BreastCancerData.RowCount);
        rows.Count(r => r.Malignant).Should().Be(212);
        rows.Should().OnlyContain(r => r.Features.Length == 30 && r.Features.All(v => v >= 0));
        // The file's first row (17.99, 10.38, ..., class 0) is the UCI set's first case, a malignant one.
        rows[0].Features[0].Should().Be(17.99f);
        rows[0].Malignant.Should().BeTrue();
        rows.Max(r => r.Features[3]).Should().Be(2501f, "the largest mean area in the data set's documented statistics");
    }

    [Theory]
    [InlineData("569,30,benign,malignant\n", "line 1")]
    [InlineData("1,30,malignant,benign\n" + "1,2\n", "line 2: expected 31")]
    [InlineData("1,30,malignant,benign\n" + "1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,2\n", "line 2: class code '2'")]
    [InlineData("1,30,malignant,benign\n" + "1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,x,1,1,1,1,1,1,1,1,1,1,1,1,1,1,0\n", "line 2, feature 15")]
    [InlineData("2,30,malignant,benign\n" + "1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,0\n", "announces 2 rows")]
    public void Malformed_files_are_refused_naming_the_line(string text, string expected)
    {
        FluentActions.Invoking(() => BreastCancerData.Parse(new StringReader(text), "test.csv"))
            .Should().Throw<InvalidDataException>().WithMessage($"*test.csv*{expected}*");
    }

    [Fact]
    public void Roc_area_counts_ties_as_half_and_matches_MLNET_AnomalyDetection_Evaluate()
    {
        RocCurve.From([0.9f, 0.8f, 0.8f, 0.1f], [true, false, true, false]).Area().Should().Be(0.875);

        var random = new Random(4);
        var rows = Enumerable.Range(0, 300).Select(i =>
        {
            bool anomaly = i % 3 == 0;
            // Rounded to one decimal so that many scores tie.
            float score = MathF.Round((float)(random.NextDouble() + (anomaly ? 0.4 : 0)), 1);
            return new ScoredRow { Label = anomaly ? 1 : 0, Score = score, PredictedLabel = score > 0.7f };
        }).ToArray();
        var ml = new MLContext(seed: 0);

        double expected = ml.AnomalyDetection.Evaluate(ml.Data.LoadFromEnumerable(rows)).AreaUnderRocCurve;

        RocCurve roc = RocCurve.From(rows.Select(r => r.Score).ToArray(), rows.Select(r => r.Label == 1).ToArray());
        roc.Area().Should().BeApproximately(expected, 1e-9);
        roc.FalsePositiveRates.Should().BeInAscendingOrder().And.StartWith(0).And.EndWith(1);
        roc.TruePositiveRates.Should().BeInAscendingOrder().And.StartWith(0).And.EndWith(1);
    }

    [Fact]
    public void Anomaly_command_prints_the_table_and_writes_the_ROC_figure_and_the_table()
    {
        using var folder = new TemporaryDirectory();

        Cli.Result result = Cli.Run("anomaly", "--seeds", "2", "--epochs", "3", "--out", folder.Path);

        result.ExitCode.Should().Be(0, result.Error);
        result.Output.Should().Contain("| VAE Gaussian (Vae.ML), raw features |").And.Contain("| VAE Bernoulli, min-max unclamped |")
            .And.Contain("| RandomizedPca (ML.NET), min-max |").And.Contain("mean ± sd");
        string table = File.ReadAllText(folder.File(AnomalyCommand.TableFileName));
        table.Should().Contain("| seed 0 | seed 1 | mean ± sd |").And.Contain("vae-ml anomaly --seeds 2");
        using SKBitmap figure = SKBitmap.Decode(folder.File(AnomalyCommand.RocFileName));
        figure.Width.Should().Be(RocFigure.Width);
        figure.Height.Should().Be(RocFigure.Height);
    }

    [Fact]
    public void Anomaly_command_refuses_a_zero_seed_count()
    {
        Cli.Result result = Cli.Run("anomaly", "--seeds", "0");

        result.ExitCode.Should().NotBe(0);
        result.Error.Should().Contain("--seeds must be at least 1");
    }

    private sealed class ScoredRow
    {
        public float Label { get; set; }

        public float Score { get; set; }

        public bool PredictedLabel { get; set; }
    }
}
