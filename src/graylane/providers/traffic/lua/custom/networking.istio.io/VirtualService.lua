-- graylane: canary routes in an Istio VirtualService (networking.istio.io).
--
-- Contract (Kruise's): obj.data = {spec, labels, annotations} of the ORIGINAL object, obj.canaryWeight
-- (-1: the step sets no weight), obj.stableWeight, obj.matches, obj.canaryService, obj.stableService,
-- obj.requestHeaderModifier in; the new {spec, labels, annotations} out.
--   - matches: one http route per step match goes first, sending to the canary (header and query
--     conditions become {name = {exact|regex = value}}, a path becomes uri), with the step's
--     requestHeaderModifier as headers.request.set/add/remove; each is put at the top in turn, so
--     they end in reverse step order, as Kruise's script writes them (users' GitOps diffs compare);
--   - otherwise a weight: every http/tcp/tls route WITHOUT match conditions that sends to the stable
--     Service keeps its destinations with weights scaled to stableWeight and gains the canary one.
-- When canary and stable are the same Service (disableGenerateCanaryService) the canary is the
-- stable host's subset "canary" (see DestinationRule.lua).
local data = obj.data
local spec = data.spec
local canaryWeight, stableWeight = obj.canaryWeight, obj.stableWeight
if canaryWeight == -1 then
  canaryWeight, stableWeight = 100, 0
end

local function shortHost(host)
  local dot = string.find(host or "", ".", 1, true)
  if dot then return string.sub(host, 1, dot - 1) end
  return host
end

local function canaryDestination(port)
  local destination = { host = obj.canaryService }
  if obj.canaryService == obj.stableService then
    destination.subset = "canary"
  end
  if port ~= nil then destination.port = port end
  return destination
end

local matchKind = { Exact = "exact", RegularExpression = "regex", Prefix = "prefix", PathPrefix = "prefix" }

local function condition(rule)
  return { [matchKind[rule.type or "Exact"] or "exact"] = rule.value }
end

local function istioMatch(match)
  local out = {}
  for _, key in ipairs({ "headers", "queryParams" }) do
    if match[key] ~= nil and #match[key] > 0 then
      out[key] = {}
      for _, rule in ipairs(match[key]) do
        out[key][rule.name] = condition(rule)
      end
    end
  end
  if match.path ~= nil then
    out.uri = { [matchKind[match.path.type or "PathPrefix"] or "prefix"] = match.path.value or "/" }
  end
  return out
end

local function headerOperations(modifier)
  local request = {}
  for _, action in ipairs({ "set", "add" }) do
    if modifier[action] ~= nil and #modifier[action] > 0 then
      request[action] = {}
      for _, header in ipairs(modifier[action]) do
        request[action][header.name] = header.value
      end
    end
  end
  if modifier.remove ~= nil and #modifier.remove > 0 then
    request.remove = modifier.remove
  end
  return { request = request }
end

local function addMatchRoutes()
  spec.http = spec.http or {}
  for _, match in ipairs(obj.matches) do
    local route = { match = { istioMatch(match) }, route = { { destination = canaryDestination(nil) } } }
    if obj.requestHeaderModifier ~= nil then
      route.headers = headerOperations(obj.requestHeaderModifier)
    end
    table.insert(spec.http, 1, route)
  end
end

local function sendsToStable(rule)
  for _, destination in ipairs(rule.route or {}) do
    if shortHost(destination.destination.host) == obj.stableService then return destination end
  end
  return nil
end

local function addWeights(protocol)
  for _, rule in ipairs(spec[protocol] or {}) do
    local stable = sendsToStable(rule)
    if rule.match == nil and stable ~= nil then
      local count = #rule.route
      for _, destination in ipairs(rule.route) do
        if destination.weight ~= nil then
          destination.weight = math.floor(destination.weight * stableWeight / 100)
        else
          destination.weight = math.floor(stableWeight / count)
        end
      end
      table.insert(rule.route, { destination = canaryDestination(stable.destination.port), weight = canaryWeight })
    end
  end
end

if obj.matches ~= nil and #obj.matches > 0 then
  addMatchRoutes()
else
  for _, protocol in ipairs({ "http", "tcp", "tls" }) do
    addWeights(protocol)
  end
end
return data
