using System.Text;
using Vae.ML.Samples.Training;

namespace Vae.ML.Samples.Experiments;

/// <summary>
/// Assembles docs/report/extended.md from the sections the experiments wrote (<c>{out}/sections/{name}.md</c>); a
/// section that has not run is listed as "not run" with the command that produces it. Nothing here computes or
/// types a number: every number comes from a section, and each section says how it was run.
/// </summary>
internal static class ExtendedReportWriter
{
    /// <summary>Where experiment <paramref name="name"/> writes its section.</summary>
    public static string SectionPath(ExperimentSettings settings, string name) => Path.Combine(settings.OutputDirectory, "sections", name + ".md");

    public static void Write(ExperimentSettings settings)
    {
        var versions = SampleRun.CurrentVersions();
        var md = new StringBuilder();
        md.AppendLine("# The report's future work, done and measured");
        md.AppendLine();
        if (settings.Tiny)
        {
            md.AppendLine("> **TINY MODE.** A smoke test on a few hundred images and one epoch: these numbers show that every experiment runs, nothing else.");
            md.AppendLine();
        }

        md.AppendLine("The original report ends with what it would do next: a larger latent space, a \u03b2-VAE, convolutional networks, Fashion-MNIST. Each is below as an experiment of `vae-ml experiments` (`--only latent|beta|arch|fashion|ood`), with the evaluation serious VAE work uses: the test negative log-likelihood \u2212log p(x) by the importance-weighted bound (IWAE, Burda et al. 2015; `VaeTransformer.LogLikelihood`), and out-of-distribution detection with the `Score` column.");
        md.AppendLine();
        md.AppendLine("Everything below was written by the command; each section ends with how, when and with which options it ran. Runs are cached per configuration (under the figures' folder, `runs/`, not committed), so sections run at different times reuse each other's models; a cached run keeps the numbers of the Vae.ML build that trained it (delete `runs/` to train again with the current one).");
        md.AppendLine();
        md.AppendLine($"Machine of the last assembly: {versions.ProcessorCount} logical CPUs, {versions.Processor}; Vae.ML {versions.VaeMl}, TorchSharp {versions.TorchSharp}, ML.NET {versions.MlNet}, {versions.DotNet}.");
        md.AppendLine();
        md.AppendLine("**Log-likelihood anchor.** The PyTorch original (MNIST, seed 0, 20 epochs) has a test NLL of 150.96 (k = 1), 148.19 (k = 200), 147.97 (k = 1000) nats (shared/FACTS.md). Vae.ML's estimator agrees with an independent PyTorch IWAE on the same weights (exported as safetensors) to a few hundredths of a nat: tests/Vae.ML.Tests/Evaluation/LogLikelihoodTests.cs checks it on every CI run (0.2-nat bound), for the Bernoulli and the Gaussian likelihood.");
        md.AppendLine();
        foreach (string name in ExperimentSettings.Names)
        {
            string path = SectionPath(settings, name);
            if (File.Exists(path))
            {
                md.Append(File.ReadAllText(path));
            }
            else
            {
                md.AppendLine($"## {name}");
                md.AppendLine();
                md.AppendLine($"Not run yet: `vae-ml experiments --only {name}` writes this section.");
                md.AppendLine();
            }
        }

        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(settings.DocPath))!);
        File.WriteAllText(settings.DocPath, md.ToString());
    }
}
