// Consumer app 3 (tools/consumers/run.sh): Vae.ML in one app with Microsoft.ML.TorchSharp 0.23.1 and TorchVision
// 0.107.0. NuGet resolves one TorchSharp for all three: 0.107.0, Vae.ML's. Microsoft.ML.TorchSharp was built against
// TorchSharp 0.102.7, so every TorchSharp member its IL calls is resolved against the TorchSharp that loads: a member
// that is gone fails with MissingMethodException when the calling method is first run. The known gaps are listed
// below and in the README; any other gap, or a known one that disappears, fails this app so the README gets updated.
using Microsoft.ML;
using Microsoft.ML.Data;
using Mono.Cecil;
using TorchSharp;
using Vae.ML;

string[] knownMissing =
[
    // Used by the object detection trainer's AutoFormerV2 (AutoFormerV2Block.forward, FPN.forward) only.
    "TorchSharp.torch/Tensor TorchSharp.torch/nn/functional::interpolate(TorchSharp.torch/Tensor,System.Int64[],System.Double[],TorchSharp.torch/InterpolationMode,System.Nullable`1<System.Boolean>,System.Boolean)",
];

// 1. Vae.ML trains and scores.
var ml = new MLContext(seed: 0);
var random = new Random(0);
var rows = Enumerable.Range(0, 500)
    .Select(_ => new Row { Features = Enumerable.Range(0, 16).Select(_ => (float)random.NextDouble()).ToArray() })
    .ToList();
IDataView data = ml.Data.LoadFromEnumerable(rows);
using VaeTransformer vae = ml.Transforms.Vae(latentDimension: 2, epochs: 1, seed: 0).Fit(data);
float[] z = vae.Transform(data).GetColumn<float[]>("Latent").First();
if (!z.All(float.IsFinite))
{
    throw new InvalidOperationException("Vae.ML gave a non-finite Latent next to Microsoft.ML.TorchSharp and TorchVision");
}

// 2. TorchVision runs a model forward on the same TorchSharp.
using var resnet = torchvision.models.resnet18(num_classes: 10);
using var logits = resnet.call(torch.rand(1, 3, 64, 64));

// 3. Microsoft.ML.TorchSharp's TorchSharp calls.
string mlTorchSharp = typeof(Microsoft.ML.TorchSharp.TorchSharpCatalog).Assembly.Location;
var resolver = new DefaultAssemblyResolver();
resolver.AddSearchDirectory(Path.GetDirectoryName(typeof(torch).Assembly.Location)!);
resolver.AddSearchDirectory(Path.GetDirectoryName(typeof(object).Assembly.Location)!);
using var module = ModuleDefinition.ReadModule(mlTorchSharp, new ReaderParameters { AssemblyResolver = resolver });
var references = module.GetMemberReferences().Where(m => m.DeclaringType.GetElementType().Scope.Name == "TorchSharp").ToList();
var missing = references.Where(m => m.Resolve() is null).Select(m => m.FullName).Distinct().Order().ToList();

Console.WriteLine($"compat app: Vae.ML Latent[0] = ({z[0]:R}, {z[1]:R}); TorchVision resnet18 -> {string.Join('x', logits.shape)}; " +
                  $"TorchSharp {typeof(torch).Assembly.GetName().Version} loaded; {references.Count} TorchSharp members called by " +
                  $"Microsoft.ML.TorchSharp, {missing.Count} missing");
foreach (string member in missing)
{
    Console.WriteLine("  missing: " + member);
}

if (!missing.SequenceEqual(knownMissing.Order()))
{
    Console.Error.WriteLine("The TorchSharp members missing for Microsoft.ML.TorchSharp changed: update knownMissing and the README.");
    return 1;
}

return 0;

internal sealed class Row
{
    [VectorType(16)]
    public float[] Features { get; set; } = [];
}
