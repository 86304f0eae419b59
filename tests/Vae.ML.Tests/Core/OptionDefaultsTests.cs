namespace Vae.ML.Tests.Core;

/// <summary>
/// The documented defaults of <see cref="VaeOptions"/> (the report's configuration, README and the options' XML docs),
/// value by value. Written for the Stryker run on the root files: other tests set most options themselves, so a
/// changed default string or size went unnoticed.
/// </summary>
public class OptionDefaultsTests
{
    [Fact]
    public void The_defaults_are_the_report_configuration_and_the_documented_column_names()
    {
        var options = new VaeOptions();

        options.FeatureColumnName.Should().Be("Features");
        options.LatentColumnName.Should().Be("Latent");
        options.LatentLogVarianceColumnName.Should().Be("LatentLogVariance");
        options.ReconstructionColumnName.Should().Be("Reconstruction");
        options.ScoreColumnName.Should().Be("Score");
        options.LatentDimension.Should().Be(2);
        options.Architecture.Should().Be(VaeArchitecture.Mlp);
        options.HiddenSizes.Should().Equal(400);
        options.ImageShape.Should().BeNull();
        options.Epochs.Should().Be(20);
        options.BatchSize.Should().Be(128);
        options.LearningRate.Should().Be(1e-3);
        options.Beta.Should().Be(1.0);
        options.KlWarmupEpochs.Should().Be(0);
        options.EarlyStoppingPatience.Should().BeNull();
        options.Likelihood.Should().Be(VaeLikelihood.Bernoulli);
        options.StandardizeFeatures.Should().BeTrue();
        options.Seed.Should().BeNull();
        options.Device.Should().Be("auto");
        options.MaxInMemoryBytes.Should().Be(1024L * 1024 * 1024, "the documented default is 1 GiB");
        options.BatchProgressInterval.Should().Be(TimeSpan.FromMilliseconds(200));
        options.CheckpointDirectory.Should().BeNull();
        options.CheckpointEveryEpochs.Should().Be(1);
        options.KeepLastCheckpoints.Should().Be(3);
        options.ResumeFrom.Should().BeNull();
    }

    [Fact]
    public void Each_new_options_object_gets_its_own_hidden_sizes_array()
    {
        var first = new VaeOptions();
        first.HiddenSizes[0] = 7;

        new VaeOptions().HiddenSizes.Should().Equal(400);
    }
}
