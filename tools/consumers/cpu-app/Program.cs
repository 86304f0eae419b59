// Consumer app 1 (tools/consumers/run.sh): trains a VAE on a few thousand MNIST rows for one epoch, reads Latent,
// saves and loads the pipeline with mlContext.Model.Save/Load, exports ONNX, and writes the scored rows for the
// serving app. Exits non-zero with a message on the first failed check.
using System.Text.Json;
using Microsoft.ML;
using Microsoft.ML.Data;
using Vae.ML;
using Vae.ML.Datasets;

if (args.Length != 1)
{
    Console.Error.WriteLine("usage: ConsumerCpuApp OUTPUT_DIRECTORY");
    return 2;
}

string output = Directory.CreateDirectory(args[0]).FullName;
var ml = new MLContext(seed: 0);
IDataView train = ml.Data.TakeRows(Mnist.Load(ml, MnistSplit.Train), 3000);
IDataView test = ml.Data.TakeRows(Mnist.Load(ml, MnistSplit.Test), 200);

// A pipeline as users build it: the VAE, then ML.NET's own normalizer on its latent means.
var pipeline = ml.Transforms.Vae(outputColumnName: "Latent", inputColumnName: "Features", latentDimension: 2, epochs: 1, seed: 0)
    .Append(ml.Transforms.NormalizeMinMax("LatentScaled", "Latent"));
var model = pipeline.Fit(train);
IDataView scored = model.Transform(test);

float[][] latent = scored.GetColumn<float[]>("Latent").ToArray();
Check(latent.Length == 200, $"expected 200 scored rows, got {latent.Length}");
Check(latent.All(z => z.Length == 2 && z.All(float.IsFinite)), "every Latent must be 2 finite numbers");
Check(latent.Select(z => z[0]).Distinct().Count() > 100, "Latent must differ between images");

string zip = Path.Combine(output, "pipeline.zip");
ml.Model.Save(model, train.Schema, zip);
var reloadContext = new MLContext(seed: 1);
ITransformer reloaded = reloadContext.Model.Load(zip, out _);
float[][] reloadedLatent = reloaded.Transform(test).GetColumn<float[]>("Latent").ToArray();
Check(latent.Zip(reloadedLatent).All(pair => pair.First.SequenceEqual(pair.Second)),
    "the pipeline loaded with mlContext.Model.Load must give the same Latent bit for bit");

VaeTransformer vae = model.OfType<VaeTransformer>().Single();
#if VAE_ML_ONNX
vae.ExportOnnx(Path.Combine(output, "vae.onnx"));
Check(new FileInfo(Path.Combine(output, "vae.onnx")).Length > 0, "ExportOnnx wrote an empty file");
#endif

// The rows and Vae.ML's outputs, for the serving app to compare with (float round-trips exactly through JSON).
IDataView vaeOnly = vae.Transform(test);
var rows = new ScoredRows(
    Features: vaeOnly.GetColumn<float[]>("Features").ToArray(),
    Latent: latent,
    LatentLogVariance: vaeOnly.GetColumn<float[]>("LatentLogVariance").ToArray(),
    Reconstruction: vaeOnly.GetColumn<float[]>("Reconstruction").ToArray(),
    Score: vaeOnly.GetColumn<float>("Score").ToArray());
File.WriteAllText(Path.Combine(output, "scored.json"), JsonSerializer.Serialize(rows));

Console.WriteLine($"cpu app: trained on 3000 rows, scored 200, Latent[0] = ({latent[0][0]:R}, {latent[0][1]:R}), " +
                  $"Model.Save/Load identical, ONNX {(File.Exists(Path.Combine(output, "vae.onnx")) ? "exported" : "not exported")}");
return 0;

static void Check(bool condition, string message)
{
    if (!condition)
    {
        throw new InvalidOperationException("consumer check failed: " + message);
    }
}

internal sealed record ScoredRows(float[][] Features, float[][] Latent, float[][] LatentLogVariance, float[][] Reconstruction, float[] Score);
