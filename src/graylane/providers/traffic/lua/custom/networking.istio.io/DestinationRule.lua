-- graylane: the "canary" subset in an Istio DestinationRule (networking.istio.io).
--
-- Contract (Kruise's): obj.data = {spec, labels, annotations} of the ORIGINAL object in, the new
-- {spec, labels, annotations} out. Adds the subset {name = "canary", labels = {istio.service.tag =
-- "gray"}} that VirtualService.lua sends to when the canary and stable Service are the same; the
-- step's weight and matches do not matter here. An existing "canary" subset is left as it is.
local data = obj.data
local spec = data.spec
spec.subsets = spec.subsets or {}
for _, subset in ipairs(spec.subsets) do
  if subset.name == "canary" then return data end
end
table.insert(spec.subsets, { name = "canary", labels = { ["istio.service.tag"] = "gray" } })
return data
