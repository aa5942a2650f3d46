/// <reference types="vite/client" />

// bpmn-moddle (used directly only by the designer's round-trip test) ships no type declarations
declare module "bpmn-moddle";
