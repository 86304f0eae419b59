using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using Vae.ML.Tests.Reliability;

namespace Vae.ML.Tests.Core;

/// <summary>
/// What one <see cref="VaeTrainer.Fit(IDataView)"/> does with its data and options, seen from outside: how often it
/// reads the view in memory and streamed, the Gaussian standardization it computes (against the population mean and
/// standard deviation computed here), both cancellation tokens, and the channel its log lines come from. Written for
/// the survivors of the Stryker run on <c>VaeTrainer.cs</c> (docs/testing.md, "Mutation testing").
/// </summary>
public class TrainerRunTests
{
    [Theory]
    [InlineData(false, 2)] // count, then one read into memory; the epochs train from memory
    [InlineData(true, 2 + 3)] // count, one validating pass, then one read per epoch
    public void In_memory_data_is_read_once_and_streamed_data_once_per_epoch(bool streamed, int enumerations)
    {
        var ml = new MLContext(seed: 0);
        var rows = new TrainingTestSupport.InstrumentedRows(SyntheticData.Rows(40), (_, _) => { });
        var options = TrainingTestSupport.Options(epochs: 3);
        options.MaxInMemoryBytes = streamed ? 0 : 1L << 30;

        using var vae = ml.Transforms.Vae(options).Fit(ml.Data.LoadFromEnumerable(rows));

        rows.Enumerations.Should().Be(enumerations);
    }

    [Fact]
    public void Gaussian_standardization_is_each_columns_population_mean_and_standard_deviation()
    {
        var ml = new MLContext(seed: 0);
        var random = new Random(3);
        var rows = Enumerable.Range(0, 50)
            .Select(_ => new Row { Features = [(float)(5 + random.NextDouble()), (float)(-200 + 40 * random.NextDouble()), (float)random.NextDouble()] })
            .ToArray();
        var options = new VaeOptions { Likelihood = VaeLikelihood.Gaussian, HiddenSizes = [4], Epochs = 1, Seed = 1, Device = "cpu" };

        using var vae = ml.Transforms.Vae(options).Fit(ml.Data.LoadFromEnumerable(rows));

        var (mean, std) = vae.Standardization!.Value;
        for (var j = 0; j < 3; j++)
        {
            var column = rows.Select(r => (double)r.Features[j]).ToArray();
            var m = column.Average();
            var s = Math.Sqrt(column.Sum(v => (v - m) * (v - m)) / column.Length);
            mean[j].Should().BeApproximately((float)m, (float)(1e-5 * Math.Max(1, Math.Abs(m))), "column {0}", j);
            std[j].Should().BeApproximately((float)s, (float)(1e-5 * s), "column {0}", j);
        }
    }

    [Fact]
    public void Fit_with_a_token_still_honours_the_options_token()
    {
        var ml = new MLContext(seed: 0);
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        var options = TrainingTestSupport.Options(epochs: 1);
        options.CancellationToken = cancelled.Token;

        var fit = () => ml.Transforms.Vae(options).Fit(SyntheticData.Load(ml, 40), CancellationToken.None);

        fit.Should().Throw<OperationCanceledException>();
    }

    [Fact]
    public void Training_logs_to_the_MLContext_from_the_Vae_channel()
    {
        var ml = new MLContext(seed: 0);
        var sources = new List<string>();
        ml.Log += (_, e) =>
        {
            if (e.Kind == ChannelMessageKind.Info && e.Message.Contains("Training VAE", StringComparison.Ordinal))
            {
                lock (sources)
                {
                    sources.Add(e.Source);
                }
            }
        };

        using var vae = ml.Transforms.Vae(TrainingTestSupport.Options(epochs: 1)).Fit(SyntheticData.Load(ml, 40));

        sources.Should().ContainSingle().Which.Should().Be("Vae; Vae", "ML.NET names the host, then the channel");
    }

    private sealed class Row
    {
        [VectorType(3)]
        public float[] Features { get; set; } = [];
    }
}
