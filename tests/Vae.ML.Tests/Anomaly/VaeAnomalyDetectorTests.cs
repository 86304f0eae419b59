using Microsoft.ML;
using Microsoft.ML.Data;
using Vae.ML.Anomaly;
using static Vae.ML.Tests.Anomaly.AnomalyTestData;

namespace Vae.ML.Tests.Anomaly;

/// <summary><c>mlContext.AnomalyDetection.Trainers.Vae</c>: training on normal rows, scoring, the threshold rule and ML.NET's evaluator.</summary>
public class VaeAnomalyDetectorTests
{
    [Fact]
    public void Trained_on_normal_rows_it_ranks_unseen_anomalies_above_held_out_normal_rows_in_MLNET_Evaluate()
    {
        var ml = new MLContext(seed: 0);
        using var detector = ml.AnomalyDetection.Trainers.Vae(SmallOptions()).Fit(Load(ml, Rows(256, 0, seed: 1)));
        var scored = detector.Transform(Load(ml, Rows(60, 20, seed: 2)));

        var metrics = ml.AnomalyDetection.Evaluate(scored);

        metrics.AreaUnderRocCurve.Should().BeGreaterThan(0.95);
        var labels = scored.GetColumn<float>("Label").ToArray();
        var predicted = scored.GetColumn<bool>("PredictedLabel").ToArray();
        predicted.Where((p, i) => labels[i] == 1).Count(p => p).Should().BeGreaterThan(15, "most unseen anomalies lie above the threshold");
    }

    [Fact]
    public void Output_is_the_input_plus_Score_and_PredictedLabel_like_MLNET_anomaly_detectors()
    {
        var ml = new MLContext(seed: 0);
        var train = Load(ml, Rows(64, 0, seed: 1));
        var trainer = ml.AnomalyDetection.Trainers.Vae(featureColumnName: "Features", latentDimension: 2, epochs: 2, seed: 1);
        var shape = trainer.GetOutputSchema(Vae.ML.Internals.MlNetInternals.ShapeOf(train.Schema));
        shape.Select(c => c.Name).Should().Equal("Features", "Label", "Score", "PredictedLabel");
        shape.Single(c => c.Name == "PredictedLabel").ItemType.Should().Be(BooleanDataViewType.Instance);

        using var detector = trainer.Fit(train);
        var schema = detector.Transform(train).Schema;
        schema.Select(c => (c.Name, c.Type)).Should().Equal(
            ("Features", train.Schema["Features"].Type), ("Label", NumberDataViewType.Single),
            ("Score", NumberDataViewType.Single), ("PredictedLabel", BooleanDataViewType.Instance));
        detector.GetOutputSchema(train.Schema).Select(c => c.Name).Should().Equal(schema.Select(c => c.Name));
    }

    [Fact]
    public void Score_is_the_VAE_loss_and_PredictedLabel_is_Score_above_the_threshold_in_views_and_the_prediction_engine()
    {
        var ml = new MLContext(seed: 0);
        using var detector = ml.AnomalyDetection.Trainers.Vae(SmallOptions()).Fit(Load(ml, Rows(128, 0, seed: 1)));
        var rows = Rows(30, 10, seed: 2);
        var scored = detector.Transform(Load(ml, rows));

        var scores = scored.GetColumn<float>("Score").ToArray();
        scores.Should().Equal(detector.Vae.Score(rows.SelectMany(r => r.Features).ToArray()));
        scored.GetColumn<bool>("PredictedLabel").Should().Equal(scores.Select(s => s > detector.Threshold));

        var engine = ml.Model.CreatePredictionEngine<Row, Prediction>(detector);
        var single = engine.Predict(rows[^1]);

        // The engine scores one row on the managed path (ManagedMlp), which sums in another order than libtorch's
        // batch: equal within float rounding, not bit for bit (the weights of a given training decide the last bit).
        single.Score.Should().BeApproximately(scores[^1], 1e-6f * Math.Abs(scores[^1]));
        single.PredictedLabel.Should().Be(scores[^1] > detector.Threshold);
    }

    [Fact]
    public void A_NaN_score_is_passed_through_and_not_flagged()
    {
        var ml = new MLContext(seed: 0);
        var train = Load(ml, Rows(32, 0, seed: 1));
        using var detector = ml.AnomalyDetection.Trainers.Vae(featureColumnName: "Features", epochs: 1, seed: 1).Fit(train);
        var columns = new AnomalyColumns(detector, train.Schema, detector.Vae.GetOutputSchema(train.Schema));
        var vaeRow = new NaNScoreRow(detector.Vae.GetOutputSchema(train.Schema));

        float score = 0;
        columns.GetGetter<float>(vaeRow, columns.OutputSchema["Score"])(ref score);
        bool flagged = true;
        columns.GetGetter<bool>(vaeRow, columns.OutputSchema["PredictedLabel"])(ref flagged);

        float.IsNaN(score).Should().BeTrue();
        flagged.Should().BeFalse("NaN > threshold is false, as in ML.NET's own scorers");
    }

    /// <summary>A row of the VAE's output whose Score is NaN, as the VAE gives for a row with a NaN feature.</summary>
    private sealed class NaNScoreRow(DataViewSchema schema) : DataViewRow
    {
        public override DataViewSchema Schema => schema;

        public override long Position => 0;

        public override long Batch => 0;

        public override ValueGetter<DataViewRowId> GetIdGetter() => (ref DataViewRowId id) => id = default;

        public override bool IsColumnActive(DataViewSchema.Column column) => true;

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            column.Name.Should().Be("Score");
            ValueGetter<float> nan = (ref float value) => value = float.NaN;
            return (ValueGetter<TValue>)(Delegate)nan;
        }
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(0.05)]
    [InlineData(0.25)]
    public void Threshold_is_the_training_scores_quantile_at_one_minus_contamination(double contamination)
    {
        var ml = new MLContext(seed: 0);
        var train = Load(ml, Rows(200, 0, seed: 1));
        using var detector = ml.AnomalyDetection.Trainers.Vae(SmallOptions(), contamination).Fit(train);

        var scores = detector.Transform(train).GetColumn<float>("Score").Order().ToArray();
        detector.Contamination.Should().Be(contamination);
        detector.Threshold.Should().Be(ScoreQuantile.Of(scores, 1 - contamination));
        var flagged = detector.Transform(train).GetColumn<bool>("PredictedLabel").Count(p => p);
        flagged.Should().BeLessThanOrEqualTo((int)Math.Ceiling(contamination * scores.Length))
            .And.BeGreaterThanOrEqualTo((int)Math.Floor(contamination * scores.Length) - 1);
    }

    [Fact]
    public void Quantile_interpolates_linearly_between_order_statistics_as_NumPy_and_ignores_NaN()
    {
        float[] scores = [4, 1, float.NaN, 3, 2];
        ScoreQuantile.Of(scores, 0.5).Should().Be(2.5f);
        ScoreQuantile.Of(scores, 0.9).Should().BeApproximately(3.7f, 1e-6f);
        ScoreQuantile.Of(scores, 1).Should().Be(4);
        ScoreQuantile.Of(scores, 0).Should().Be(1);
        ScoreQuantile.Of([5f], 0.9).Should().Be(5);
        FluentActions.Invoking(() => ScoreQuantile.Of([float.NaN], 0.5)).Should().Throw<InvalidOperationException>();
    }

    [Fact]
    public void ChangeModelThreshold_gives_a_detector_with_the_new_threshold_and_leaves_the_original_as_it_was()
    {
        var ml = new MLContext(seed: 0);
        var original = ml.AnomalyDetection.Trainers.Vae(SmallOptions()).Fit(Load(ml, Rows(128, 0, seed: 1)));
        var data = Load(ml, Rows(30, 10, seed: 2));
        var scores = original.Transform(data).GetColumn<float>("Score").ToArray();
        var before = original.Transform(data).GetColumn<bool>("PredictedLabel").ToArray();
        var median = scores.Order().ElementAt(scores.Length / 2);

        using var changed = ml.AnomalyDetection.ChangeModelThreshold(original, median);

        changed.Threshold.Should().Be(median);
        changed.Contamination.Should().BeNull("the threshold no longer comes from the contamination rule");
        changed.Transform(data).GetColumn<bool>("PredictedLabel").Should().Equal(scores.Select(s => s > median));
        original.Transform(data).GetColumn<bool>("PredictedLabel").Should().Equal(before);

        original.Dispose();
        changed.Transform(data).GetColumn<float>("Score").Should().Equal(scores, "the shared network lives until its last detector is disposed");
        FluentActions.Invoking(() => ml.AnomalyDetection.ChangeModelThreshold(original, 1f)).Should().Throw<ObjectDisposedException>();
        FluentActions.Invoking(() => ml.AnomalyDetection.ChangeModelThreshold(changed, float.NaN))
            .Should().Throw<ArgumentOutOfRangeException>().WithParameterName("threshold");
    }

    [Fact]
    public void Bad_options_and_inputs_are_named()
    {
        var ml = new MLContext(seed: 0);
        FluentActions.Invoking(() => ml.AnomalyDetection.Trainers.Vae(contamination: 1.0))
            .Should().Throw<ArgumentOutOfRangeException>().WithParameterName("contamination");
        FluentActions.Invoking(() => ml.AnomalyDetection.Trainers.Vae(contamination: double.NaN))
            .Should().Throw<ArgumentOutOfRangeException>().WithParameterName("contamination");
        FluentActions.Invoking(() => ml.AnomalyDetection.Trainers.Vae(new VaeOptions { ScoreColumnName = "PredictedLabel" }))
            .Should().Throw<ArgumentException>().WithParameterName(nameof(VaeOptions.ScoreColumnName));
        FluentActions.Invoking(() => ml.AnomalyDetection.Trainers.Vae(latentDimension: 0))
            .Should().Throw<ArgumentOutOfRangeException>().WithParameterName(nameof(VaeOptions.LatentDimension));

        var data = Load(ml, Rows(16, 0, seed: 1));
        FluentActions.Invoking(() => ml.AnomalyDetection.Trainers.Vae(featureColumnName: "Pixels").GetOutputSchema(Vae.ML.Internals.MlNetInternals.ShapeOf(data.Schema)))
            .Should().Throw<ArgumentOutOfRangeException>().WithMessage("*'Pixels'*not found*");
        FluentActions.Invoking(() => ml.AnomalyDetection.Trainers.Vae(featureColumnName: "Label", epochs: 1).Fit(data))
            .Should().Throw<ArgumentException>().WithMessage("*'Label'*");
    }
}
