using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace Vae.ML.Samples.Experiments;

/// <summary>Runs <c>Experiments/pytorch_iwae.py</c>: the IWAE log-likelihood of a safetensors export, computed by PyTorch.</summary>
internal static class PyTorchIwae
{
    /// <summary>The script, copied next to the application.</summary>
    public static string ScriptPath => Path.Combine(AppContext.BaseDirectory, "Experiments", "pytorch_iwae.py");

    /// <summary>A Python that imports torch ($VAE_ML_PYTHON, else /usr/bin/python3), or null with the reason.</summary>
    public static string? FindPython(out string why)
    {
        string python = Environment.GetEnvironmentVariable("VAE_ML_PYTHON") is { Length: > 0 } configured ? configured : "/usr/bin/python3";
        if (!File.Exists(python) || !File.Exists(ScriptPath))
        {
            why = File.Exists(python) ? $"{ScriptPath} is missing" : $"{python} is absent";
            return null;
        }

        using var process = Process.Start(new ProcessStartInfo(python, ["-c", "import torch"]) { RedirectStandardError = true, UseShellExecute = false })!;
        process.StandardError.ReadToEnd();
        process.WaitForExit();
        why = process.ExitCode == 0 ? "" : $"{python} cannot import torch";
        return process.ExitCode == 0 ? python : null;
    }

    /// <summary>Mean log p(x) per row (nats) of <paramref name="inputs"/> under the model in <paramref name="weights"/>.</summary>
    public static double LogLikelihood(string python, string weights, float[] inputs, int samples, int seed)
    {
        string inputPath = Path.Combine(Path.GetTempPath(), $"vae-ml-iwae-{Guid.NewGuid():N}.f32");
        try
        {
            File.WriteAllBytes(inputPath, MemoryMarshal.AsBytes(inputs.AsSpan()).ToArray());
            var start = new ProcessStartInfo(python, [ScriptPath, weights, inputPath, "--samples", samples.ToString(), "--seed", seed.ToString()])
            { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            using var process = Process.Start(start)!;
            var errors = process.StandardError.ReadToEndAsync();
            string output = process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            if (process.ExitCode != 0)
            {
                throw new IOException($"{ScriptPath} failed with exit code {process.ExitCode}: {errors.Result.Trim()}");
            }

            using var result = JsonDocument.Parse(output);
            return result.RootElement.GetProperty("log_likelihood").GetDouble();
        }
        finally
        {
            File.Delete(inputPath);
        }
    }
}
