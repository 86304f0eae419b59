// Consumer app 4 (tools/consumers/run.sh): Vae.ML from source through a ProjectReference, built with
// `dotnet build -o DIR`; trains, saves with mlContext.Model.Save and loads in a fresh MLContext.
using Microsoft.ML;
using Microsoft.ML.Data;
using Vae.ML;

string zip = Path.Combine(args.Length == 1 ? args[0] : Path.GetTempPath(), "source-app.zip");
var ml = new MLContext(seed: 0);
var random = new Random(0);
IDataView data = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 300)
    .Select(_ => new Row { Features = Enumerable.Range(0, 8).Select(_ => (float)random.NextDouble()).ToArray() })
    .ToList());   // materialized: a lazy sequence over one Random would give new rows on every pass
using VaeTransformer vae = ml.Transforms.Vae(latentDimension: 2, epochs: 1, seed: 0).Fit(data);
float[] before = vae.Transform(data).GetColumn<float[]>("Latent").First();
ml.Model.Save(vae, data.Schema, zip);
float[] after = new MLContext(seed: 1).Model.Load(zip, out _).Transform(data).GetColumn<float[]>("Latent").First();
if (!before.SequenceEqual(after))
{
    throw new InvalidOperationException("consumer check failed: the loaded model gives another Latent");
}

Console.WriteLine($"source app: Vae.ML built from source, Latent[0] = ({before[0]:R}, {before[1]:R}), Model.Save/Load identical");
return 0;

internal sealed class Row
{
    [VectorType(8)]
    public float[] Features { get; set; } = [];
}
