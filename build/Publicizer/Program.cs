using Mono.Cecil;

// Usage: Vae.ML.Build.Publicizer <input.dll> <output.dll>
// Rewrites the assembly so that every type, method and field is public. Fields that share a name with an event
// or property of their type stay as they are, so that the compiler sees no ambiguity.
if (args.Length != 2)
{
    Console.Error.WriteLine("usage: Vae.ML.Build.Publicizer <input.dll> <output.dll>");
    return 2;
}

var (input, output) = (args[0], args[1]);
var resolver = new DefaultAssemblyResolver();
resolver.AddSearchDirectory(Path.GetDirectoryName(Path.GetFullPath(input))!);
using (var assembly = AssemblyDefinition.ReadAssembly(input, new ReaderParameters { AssemblyResolver = resolver }))
{
    foreach (var type in assembly.MainModule.GetTypes())
    {
        Publicize(type);
    }

    Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(output))!);
    var temporary = output + ".tmp";
    assembly.Write(temporary);
    File.Move(temporary, output, overwrite: true);
}

return 0;

static void Publicize(TypeDefinition type)
{
    if (type.IsNested)
    {
        type.IsNestedPublic = true;
    }
    else
    {
        type.IsPublic = true;
    }

    foreach (var method in type.Methods)
    {
        method.IsPublic = true;
    }

    var memberNames = type.Events.Select(e => e.Name).Concat(type.Properties.Select(p => p.Name)).ToHashSet();
    foreach (var field in type.Fields)
    {
        if (!memberNames.Contains(field.Name))
        {
            field.IsPublic = true;
        }
    }
}
