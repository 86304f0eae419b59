// Consumer app 2 (tools/consumers/run.sh): loads the ONNX file that app 1 exported with ApplyOnnxModel, scores the same
// rows and checks every output against Vae.ML's, within 1e-5 relative (|a - b| / max(|b|, 1)).
using System.Text.Json;
using Microsoft.ML;
using Microsoft.ML.Data;

if (args.Length != 1)
{
    Console.Error.WriteLine("usage: ConsumerServingApp DIRECTORY_WITH_vae.onnx_AND_scored.json");
    return 2;
}

const double Tolerance = 1e-5;
string onnxPath = Path.Combine(args[0], "vae.onnx");
var expected = JsonSerializer.Deserialize<ScoredRows>(File.ReadAllText(Path.Combine(args[0], "scored.json")))
               ?? throw new InvalidDataException("scored.json is empty");
int width = expected.Features[0].Length;

var ml = new MLContext();
var schema = SchemaDefinition.Create(typeof(Row));
schema[nameof(Row.Features)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, width);
IDataView rows = ml.Data.LoadFromEnumerable(expected.Features.Select(f => new Row { Features = f }), schema);
IDataView scored = ml.Transforms.ApplyOnnxModel(onnxPath).Fit(rows).Transform(rows);

double worst = 0;
worst = Math.Max(worst, Compare("Latent", Flatten(scored.GetColumn<float[]>("Latent")), expected.Latent.SelectMany(v => v)));
worst = Math.Max(worst, Compare("LatentLogVariance", Flatten(scored.GetColumn<float[]>("LatentLogVariance")), expected.LatentLogVariance.SelectMany(v => v)));
worst = Math.Max(worst, Compare("Reconstruction", Flatten(scored.GetColumn<float[]>("Reconstruction")), expected.Reconstruction.SelectMany(v => v)));
// ApplyOnnxModel exposes every output as a vector, the per-row Score included (one element per row).
worst = Math.Max(worst, Compare("Score", Flatten(scored.GetColumn<float[]>("Score")), expected.Score));

Console.WriteLine($"serving app: {expected.Features.Length} rows scored through ApplyOnnxModel, worst relative difference {worst:G3} (tolerance {Tolerance:G})");
return 0;

static float[] Flatten(IEnumerable<float[]> column) => column.SelectMany(v => v).ToArray();

static double Compare(string column, float[] onnx, IEnumerable<float> vaeMl)
{
    float[] expected = vaeMl.ToArray();
    if (onnx.Length != expected.Length)
    {
        throw new InvalidOperationException($"ONNX output '{column}' has {onnx.Length} values, Vae.ML's {expected.Length}");
    }

    double worst = 0;
    for (int i = 0; i < onnx.Length; i++)
    {
        double error = Math.Abs(onnx[i] - expected[i]) / Math.Max(Math.Abs(expected[i]), 1.0);
        if (!(error <= Tolerance))
        {
            throw new InvalidOperationException($"ONNX output '{column}' value {i}: {onnx[i]:R} against Vae.ML's {expected[i]:R} (relative difference {error:G3} > {Tolerance:G})");
        }

        worst = Math.Max(worst, error);
    }

    return worst;
}

internal sealed class Row
{
    public float[] Features { get; set; } = [];
}

internal sealed record ScoredRows(float[][] Features, float[][] Latent, float[][] LatentLogVariance, float[][] Reconstruction, float[] Score);
