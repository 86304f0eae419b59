using Vae.ML.Tests.Datasets;

namespace Vae.ML.Tests.Samples;

/// <summary>
/// <c>vae-ml experiments --tiny</c>: every experiment runs end to end on a few hundred images and writes its section,
/// figures and the assembled document; a second invocation reuses the cached runs.
/// </summary>
[Collection(MnistCollection.Name)]
public class ExperimentsCommandTests(MnistDataFixture mnist)
{
    [Fact]
    public void Tiny_mode_runs_every_experiment_and_writes_the_document_with_its_tables_and_figures()
    {
        using var folder = new TemporaryDirectory();
        string doc = folder.File("extended.md");
        string output = folder.File("extended");
        Cli.Result result = Cli.Run("experiments", "--tiny", "--data", mnist.DataDirectory, "--out", output, "--doc", doc);

        result.ExitCode.Should().Be(0, result.Error);
        string text = File.ReadAllText(doc);
        text.Should().Contain("TINY MODE");
        foreach (string heading in new[] { "## Log-likelihood", "## Latent size", "## \u03b2-VAE", "## Architecture", "## Out-of-distribution" })
        {
            text.Should().Contain(heading);
        }

        text.Should().NotContain("Not run yet");
        text.Should().Contain("| MLP, at the convolutional budget | 2 | 1 | 1 | 200 |", "the convolutional runs trained on fewer images, so the MLP is also trained on those");
        text.Should().Contain("| 20 |").And.Contain("(1 seed)").And.Contain("k = 10");
        foreach (string figure in new[] { "beta/latent_beta_0.5.png", "beta/latent_beta_4.png", "arch/reconstructions.png" })
        {
            File.Exists(Path.Combine(output, figure)).Should().BeTrue(figure);
            text.Should().Contain("extended/" + figure);
        }

        bool fashionRan = !text.Contains("Not run: a data set was unavailable", StringComparison.Ordinal);
        if (fashionRan)
        {
            // The derived split (no official mirror reachable) must be announced, never called official.
            text.Should().Contain("## Fashion-MNIST");
            (text.Contains("official Fashion-MNIST files (MD5-verified)", StringComparison.Ordinal) || text.Contains("Not the official split", StringComparison.Ordinal)).Should().BeTrue();
            File.Exists(Path.Combine(output, "fashion-mnist", "latent_space.png")).Should().BeTrue();
            File.Exists(Path.Combine(output, "ood", "scores_mnist_z2.png")).Should().BeTrue();
            text.Should().Contain("AUROC");
        }

        // The second time every run comes from the cache: nothing is trained again.
        Cli.Result again = Cli.Run("experiments", "--tiny", "--only", "latent", "--data", mnist.DataDirectory, "--out", output, "--doc", doc);
        again.ExitCode.Should().Be(0, again.Error);
        again.Output.Should().Contain("reusing the finished run").And.NotContain("Training VAE");

        // Other NLL settings re-estimate the NLL of the saved models instead of training them again.
        Cli.Result remeasured = Cli.Run("experiments", "--tiny", "--only", "latent", "--nll-images", "50", "--data", mnist.DataDirectory, "--out", output, "--doc", doc);
        remeasured.ExitCode.Should().Be(0, remeasured.Error);
        remeasured.Output.Should().Contain("estimating its NLL with the new settings").And.NotContain("Training VAE");
        File.ReadAllText(doc).Should().Contain("on the first 50 test images");
    }

    [Theory]
    [InlineData("--only", "gan", "gan")]
    [InlineData("--seeds", "0", "--seeds must be at least 1")]
    [InlineData("--conv-epochs", "-1", "--conv-epochs must be at least 0")]
    public void Bad_options_are_refused_naming_the_option(string option, string value, string message)
    {
        Cli.Result result = Cli.Run("experiments", option, value);

        result.ExitCode.Should().NotBe(0);
        result.Error.Should().Contain(message);
    }
}
