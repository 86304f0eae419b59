using System.CommandLine;
using Vae.ML.Samples.Cli;

namespace Vae.ML.Samples.Experiments;

/// <summary>
/// <c>vae-ml experiments</c>: the report's future work (latent size, β, architecture, Fashion-MNIST,
/// out-of-distribution detection), each an experiment that writes its section of docs/report/extended.md.
/// </summary>
internal static class ExperimentsCommand
{
    public static Command Create(CliContext context)
    {
        var tiny = new Option<bool>("--tiny") { Description = "Smoke test: 300 training and 100 test images, 1 epoch, 1 seed, k = 10 (CI); the document says TINY MODE." };
        var only = new Option<string[]>("--only")
        {
            Description = "Run only these experiments (repeatable): " + string.Join(", ", ExperimentSettings.Names) + ". Default: all, in that order.",
            AllowMultipleArgumentsPerToken = true,
        };
        only.AcceptOnlyFromAmong(ExperimentSettings.Names);
        var seeds = new Option<int>("--seeds") { Description = "Seeds per configuration (0..N-1); the tables give mean \u00b1 sd.", DefaultValueFactory = _ => 3 };
        var epochs = new Option<int>("--epochs") { Description = "Training epochs of the MLP runs.", DefaultValueFactory = _ => 20 };
        var convEpochs = new Option<int>("--conv-epochs") { Description = "Training epochs of the convolutional runs (slow on a CPU); 0 skips them (listed as not run).", DefaultValueFactory = _ => 20 };
        var convSeeds = new Option<int>("--conv-seeds") { Description = "Seeds of the convolutional runs.", DefaultValueFactory = _ => 3 };
        var convTrainLimit = new Option<int?>("--conv-train-limit") { Description = "Train the convolutional runs on the first N training images only (the table says so).", HelpName = "N" };
        var nllSamples = new Option<int>("--nll-samples") { Description = "Importance samples k of the test NLL (IWAE bound).", DefaultValueFactory = _ => 200 };
        var trainLimit = new Option<int?>("--train-limit") { Description = "Train every run on the first N training images only (a compute budget; every section says so).", HelpName = "N" };
        var testLimit = new Option<int?>("--test-limit") { Description = "Evaluate on the first N test images only (every section says so).", HelpName = "N" };
        var nllImages = new Option<int?>("--nll-images") { Description = "Estimate each run's test NLL on the first N test images only (default: all); the document says so.", HelpName = "N" };
        var convNllImages = new Option<int?>("--conv-nll-images") { Description = "Estimate the convolutional runs' test NLL on the first N test images only (default: as --nll-images); the table says so.", HelpName = "N" };
        var oodNllImages = new Option<int>("--ood-nll-images") { Description = "Test images per set whose NLL the out-of-distribution table estimates (the Score uses all).", DefaultValueFactory = _ => 10_000 };
        var output = new Option<string>("--out", "-o") { Description = "Folder for figures and cached runs.", DefaultValueFactory = _ => Path.Combine("docs", "report", "extended"), HelpName = "dir" };
        var doc = new Option<string>("--doc") { Description = "The markdown document to write.", DefaultValueFactory = _ => Path.Combine("docs", "report", "extended.md"), HelpName = "file" };
        var data = new Option<string?>("--data") { Description = "Folder of the MNIST files (default: $VAE_ML_DATA or ~/.cache/vae-ml/mnist).", HelpName = "dir" };
        var fashionData = new Option<string?>("--fashion-data") { Description = "Folder of the Fashion-MNIST files (default: $VAE_ML_FASHION_MNIST_DATA or ~/.cache/vae-ml/fashion-mnist).", HelpName = "dir" };
        var anchorModel = new Option<string?>("--anchor-model") { Description = "Model (model.safetensors) whose test NLL the anchor section estimates with Vae.ML and with PyTorch on the same weights; default: the report configuration's run.", HelpName = "file" };
        var device = new Option<string>("--device") { Description = "Torch device: auto, cpu, cuda or cuda:N.", DefaultValueFactory = _ => "auto" };
        foreach (var option in new Option[] { trainLimit, testLimit, convTrainLimit, nllImages, convNllImages })
        {
            option.Validators.Add(result =>
            {
                if (SampleOptions.TryGetValue(result, out int? value) && value < 1)
                {
                    result.AddError($"{option.Name} must be at least 1, got {value}.");
                }
            });
        }

        foreach (var option in new[] { seeds, epochs, convSeeds, nllSamples, oodNllImages })
        {
            option.Validators.Add(result =>
            {
                if (SampleOptions.TryGetValue(result, out int value) && value < 1)
                {
                    result.AddError($"{option.Name} must be at least 1, got {value}.");
                }
            });
        }

        convEpochs.Validators.Add(result =>
        {
            if (SampleOptions.TryGetValue(result, out int value) && value < 0)
            {
                result.AddError($"--conv-epochs must be at least 0, got {value}.");
            }
        });

        var command = new Command("experiments",
            "Run the report's future work - latent size 2/10/20/50, beta 0.5/1/2/4, MLP vs convolutional, Fashion-MNIST, out-of-distribution " +
            "detection - and write docs/report/extended.md with every table and figure (mean \u00b1 sd over --seeds, NLL by the IWAE bound).");
        foreach (Option option in new Option[] { tiny, only, seeds, epochs, trainLimit, testLimit, convEpochs, convSeeds, convTrainLimit, nllSamples, nllImages, convNllImages, oodNllImages, output, doc, data, fashionData, anchorModel, device })
        {
            command.Options.Add(option);
        }

        command.SetAction((parseResult, cancellationToken) => VaeCli.Execute(context, () =>
        {
            var settings = new ExperimentSettings
            {
                OutputDirectory = Path.GetFullPath(parseResult.GetValue(output)!),
                DocPath = Path.GetFullPath(parseResult.GetValue(doc)!),
                Only = parseResult.GetValue(only) is { Length: > 0 } chosen ? chosen : ExperimentSettings.Names,
                Seeds = parseResult.GetValue(seeds),
                Epochs = parseResult.GetValue(epochs),
                ConvEpochs = parseResult.GetValue(convEpochs),
                ConvSeeds = parseResult.GetValue(convSeeds),
                ConvTrainLimit = parseResult.GetValue(convTrainLimit),
                NllSamples = parseResult.GetValue(nllSamples),
                TrainLimit = parseResult.GetValue(trainLimit),
                TestLimit = parseResult.GetValue(testLimit),
                NllImages = parseResult.GetValue(nllImages),
                ConvNllImages = parseResult.GetValue(convNllImages),
                OodNllImages = parseResult.GetValue(oodNllImages),
                Tiny = false,
                Device = parseResult.GetValue(device) ?? "auto",
                MnistDirectory = parseResult.GetValue(data),
                FashionDirectory = parseResult.GetValue(fashionData),
                AnchorModel = parseResult.GetValue(anchorModel) is string anchor ? Path.GetFullPath(anchor) : null,
            };
            if (parseResult.GetValue(tiny))
            {
                settings = settings.AsTiny();
            }

            var experiments = new Experiments(new ExperimentRuns(settings, context, cancellationToken), context);
            foreach (string name in ExperimentSettings.Names.Where(settings.Only.Contains))
            {
                cancellationToken.ThrowIfCancellationRequested();
                context.WriteLine($"== experiment {name} ==");
                experiments.Run(name);
                // Assembled after every experiment, so an interrupted batch still leaves a document of what finished.
                ExtendedReportWriter.Write(settings);
            }

            context.WriteLine($"Wrote {settings.DocPath}");
        }));
        return command;
    }
}
